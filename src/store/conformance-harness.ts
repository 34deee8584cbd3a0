import { newToken } from '../core/ids.js';
import type { NewSession, SessionStore } from './contract.js';

/** What a backend's test file hands to the suite. */
export interface StoreHarness {
  store: SessionStore;
  /** Dispose this store and open the same data again (durable backends only). */
  reopen?: () => Promise<SessionStore>;
  cleanup?: () => Promise<void>;
}

/** The clock the suite starts from (1 January 2026, UTC). */
export const T0 = Date.UTC(2026, 0, 1);

/** A session to create; override what the test cares about. */
export function sampleSession(over: Partial<NewSession> = {}): NewSession {
  const { id } = newToken();
  return {
    id,
    state: 'allow',
    user: null,
    clientIp: '10.0.0.1',
    profile: 'default',
    createdAt: T0,
    lastAccessAt: T0,
    idleTimeout: 900,
    lifetime: 0,
    lifetimeDeadline: null,
    policyDeadline: null,
    variables: { 'session.user.clientip': '10.0.0.1' },
    secure: {},
    cookies: {},
    sessionCookie: {},
    ...over,
  };
}
