import assert from 'node:assert/strict';
import type { AuditEvent } from '../../src/core/audit.js';
import type { CloseReason } from '../../src/core/session-types.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

/**
 * A password logon (local-users) at `/`, and a second profile `sso` at `/sso` whose policy has
 * no local-users plugin (as an LDAP or OpenID Connect sign-in would be): its sessions are made
 * by the tests with engine.create.
 */
export const USER_PAGES_CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [logon, { authenticate: users }, allow]
    logon_throttle: { per_user_address: { limit: 3, window: 900 } }
  sso:
    cookie: { name: SSOSession }
    policy: [logon, { authorize: users }, allow]
routes:
  - { match: { path: /sso }, upstream: \${UPSTREAM}, profile: sso }
  - { match: { path: / }, upstream: \${UPSTREAM} }
`;

export interface UserPagesFixture {
  fx: GatewayFixture;
  base: string;
  audit: AuditEvent[];
  /** Close reasons delivered by the close pipeline, by session id (each delivery once). */
  closes: Map<string, CloseReason[]>;
  close(): Promise<void>;
}

export async function startUserPages(): Promise<UserPagesFixture> {
  const upstream = await testUpstream();
  const audit: AuditEvent[] = [];
  const fx = await startTestGateway(USER_PAGES_CONFIG, { UPSTREAM: upstream.url }, undefined, {
    audit: { write: (e) => void audit.push(e) },
  });
  const closes = new Map<string, CloseReason[]>();
  await fx.gw.engine.onClose('test', (event) => {
    closes.set(event.sessionId, [...(closes.get(event.sessionId) ?? []), event.reason]);
  });
  return {
    fx,
    base: fx.gw.url,
    audit,
    closes,
    close: async () => {
      await fx.close();
      await upstream.close();
    },
  };
}

/** A browser (cookie jar) logged on through the form as `user`, with its own User-Agent. */
export async function logOn(base: string, user: string, password: string, agent: string): Promise<Browser> {
  const b = new Browser(base);
  const ua = { 'user-agent': agent };
  assert.equal((await b.fetch('/', { headers: ua })).status, 200);
  const res = await b.fetch('/sg/logon', {
    method: 'POST',
    body: new URLSearchParams({ username: user, password }).toString(),
    headers: { ...ua, 'content-type': 'application/x-www-form-urlencoded', origin: base },
  });
  assert.equal(res.status, 302, `logon of ${user}`);
  return b;
}

/** The user page's JSON, as an API client asks for it. */
export async function sessionsJson(b: Browser): Promise<{
  status: number;
  body: {
    user: string;
    csrf: string;
    password_change: boolean;
    password_min_length?: number;
    sessions: { id: string; short_id: string; current: boolean; protocol: string; device: string }[];
    error?: { code: string };
  };
}> {
  const res = await b.fetch('/sg/sessions', { headers: { accept: 'application/json' } });
  return { status: res.status, body: (await res.json()) as never };
}

/** POST a user page form as an API client (same origin unless `origin` is given). */
export async function post(
  b: Browser,
  base: string,
  path: string,
  fields: Record<string, string>,
  origin?: string,
): Promise<{ status: number; body: Record<string, unknown>; res: Response }> {
  const res = await b.fetch(path, {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    headers: {
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
      ...(origin === '' ? {} : { origin: origin ?? base }),
    },
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown>, res };
}

/** The session id of a browser's cookie. */
export function sessionOf(fx: GatewayFixture, b: Browser, cookie = 'MRHSession'): string {
  const token = b.jar.get(cookie);
  assert.ok(token, `a ${cookie} cookie`);
  return fx.gw.engine.sid(token);
}

/** Run the close pipeline until it has nothing left. */
export async function drain(fx: GatewayFixture): Promise<void> {
  while ((await fx.gw.engine.dispatch()) > 0);
}
