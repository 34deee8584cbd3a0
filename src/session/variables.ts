import { SessionGateError } from '../core/errors.js';
import type { SessionRecord } from '../core/session-types.js';

const NAME_RE = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/;

/** Variables whose value is the session's own state, so they can never disagree with it. */
export const DERIVED_VARIABLES: Record<string, (s: SessionRecord) => string | undefined> = {
  'session.user.sessionid': (s) => s.id,
  'session.user.starttime': (s) => String(Math.floor(s.createdAt / 1000)),
  'session.user.clientip': (s) => s.clientIp ?? undefined,
  'session.inactivity_timeout': (s) => String(s.idleTimeout),
  'session.max_session_timeout': (s) => String(s.lifetime),
};

/** Derived variables that may not be set (the timeouts may: they change the session). */
export const READ_ONLY_VARIABLES = new Set([
  'session.user.sessionid',
  'session.user.starttime',
  'session.user.clientip',
]);

/** Names already checked: a few dozen in practice, read on every request by rules. */
const CHECKED = new Set<string>();
const CHECKED_MAX = 4096;

export function checkVariableName(name: string): void {
  if (CHECKED.has(name)) return;
  if (typeof name !== 'string' || name.length > 256 || !NAME_RE.test(name)) {
    throw new SessionGateError(
      'SG_ERR_INVALID_VARIABLE_NAME',
      `invalid variable name ${JSON.stringify(String(name).slice(0, 80))}: use dotted words such as session.custom.x`,
    );
  }
  if (CHECKED.size < CHECKED_MAX) CHECKED.add(name);
}

/** Parse a timeout given as text or number: a whole number of seconds, 0 or more. */
export function parseSeconds(value: unknown, what: string): number {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new SessionGateError(
      'SG_ERR_INVALID_TIMEOUT',
      `${what} must be a whole number of seconds >= 0, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** The AES-GCM associated data binding a secure value to its session and name. */
export function secureContext(sessionId: string, name: string): string {
  return `${sessionId}\0${name}`;
}
