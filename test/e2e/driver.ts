// The client side of the end-to-end tests: logs sessions on over real HTTP (Basic auth, one
// connection per request so workers take turns) and ends them by logout, admin kill or idle
// timeout.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { idOfToken, type SessionToken } from '../../src/core/ids.js';
import { PASSWORD } from './gateways.js';

export type Ending = 'logout' | 'admin_kill' | 'idle_timeout';

export interface LoggedOn {
  id: string;
  token: string;
  /** The cookie that names the session (/idle has a profile of its own). */
  cookieName: string;
  ending: Ending;
  /** Which gateway it logged on through (index into the test's list). */
  via: number;
}

export interface Reply {
  status: number;
  setCookies: string[];
  body: string;
}

export function send(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
  timeoutMs = 10_000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method,
      agent: false,
      timeout: timeoutMs,
      headers: { accept: 'application/json', ...headers },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, setCookies: res.headers['set-cookie'] ?? [], body }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const basic = (user: string) => `Basic ${Buffer.from(`${user}:${PASSWORD}`).toString('base64')}`;

function tokenIn(reply: Reply, cookieName: string): string | undefined {
  const set = reply.setCookies.findLast((c) => c.startsWith(`${cookieName}=`));
  const value = set?.slice(cookieName.length + 1).split(';')[0];
  return value ? value : undefined;
}

/** Log one session on through `base` (path /app or /idle); throws on anything but 200. */
export async function logon(base: string, user: string, ending: Ending, via: number): Promise<LoggedOn> {
  const path = ending === 'idle_timeout' ? '/idle/x' : '/app/x';
  const cookieName = ending === 'idle_timeout' ? 'IdleSession' : 'MRHSession';
  const r = await send(`${base}${path}`, { authorization: basic(user) });
  const token = tokenIn(r, cookieName);
  if (r.status !== 200 || !token) throw new Error(`logon of ${user} via ${base}: ${r.status} ${r.body}`);
  return { id: idOfToken(token as SessionToken), token, cookieName, ending, via };
}

/**
 * A session the plugins never see: a request without credentials starts a logon (401) and the
 * session waits in `inprogress` (the tests end it with an admin kill). Returns its id.
 */
export async function unfinishedLogon(base: string): Promise<string> {
  const r = await send(`${base}/app/x`);
  const token = tokenIn(r, 'MRHSession');
  if (r.status !== 401 || !token) throw new Error(`unfinished logon via ${base}: ${r.status} ${r.body}`);
  return idOfToken(token as SessionToken);
}

/** Close a session by id through the admin API (`DELETE /api/v1/sessions/{id}`). */
export async function adminKill(adminBase: string, tokenFile: string, id: string): Promise<void> {
  const bearer = readFileSync(tokenFile, 'utf8').trim();
  const r = await send(`${adminBase}/api/v1/sessions/${id}`, { authorization: `Bearer ${bearer}` }, 'DELETE');
  if (r.status !== 204) throw new Error(`admin kill of ${id}: ${r.status} ${r.body}`);
}

/** End a session the way it was meant to end (idle ones are left to the sweeper). */
export async function end(s: LoggedOn, base: string, adminBase: string | undefined, tokenFile: string) {
  if (s.ending === 'logout') {
    const r = await send(`${base}/sg/logout`, { cookie: `${s.cookieName}=${s.token}`, origin: base }, 'POST');
    if (r.status !== 204) throw new Error(`logout of ${s.id}: ${r.status} ${r.body}`);
  } else if (s.ending === 'admin_kill') {
    if (!adminBase) throw new Error('admin_kill needs a gateway with the admin listener');
    await adminKill(adminBase, tokenFile, s.id);
  }
}

/** Run `work` over `items`, `width` at a time (a few clients at once, as browsers would be). */
export async function inParallel<T, R>(items: T[], width: number, work: (item: T, i: number) => Promise<R>) {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return out;
}

/** The endings in turn: logout, admin kill, idle timeout, logout, ... */
export const endingOf = (i: number): Ending => (['logout', 'admin_kill', 'idle_timeout'] as const)[i % 3]!;
