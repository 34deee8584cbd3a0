import fc from 'fast-check';
import type { Client } from 'undici';
import { reachesAdmin } from './lenient-upstream.js';

// The forward-auth lane of the request campaign: a trusted proxy (the campaign's own address is
// in trusted_proxies) asks /sg/auth or /sg/forward-auth about fuzzed original requests, and a
// browser asks /sg/auth/logon to come back to fuzzed return addresses. What an attacker wants
// here is a 200 for a request the acl refuses (the proxy would then serve /admin itself), or a
// logon that sends the browser to another site.

/** A forward-auth call about a fuzzed original request, or a logon with a fuzzed `rd`. */
export interface ForwardAuthCase {
  kind: 'fwdauth';
  endpoint: '/sg/auth' | '/sg/forward-auth' | '/sg/auth/logon';
  cookie: 'alice' | 'bob' | 'none' | 'bogus' | 'alice+bob' | 'bob+alice';
  /** How the original target is sent: nginx's header, Traefik's, both (agreeing or not), twice, not. */
  uriHeader: 'nginx' | 'traefik' | 'both' | 'disagree' | 'twice' | 'none';
  original: string;
  forwardedHost: 'self' | 'other' | 'dot' | 'twice' | 'none';
  proto: 'http' | 'https' | 'gopher' | undefined;
  method: string | undefined;
  browser: boolean;
}

const SEGMENTS = [
  ...['admin', 'ADMIN', '%61dmin', 'adm%69n', 'admin;x=1', '.', '..', '%2e', '%2E%2e', '', 'x'],
  ...['app', 'sg', 'auth', 'logon', '%2f', '%5c', '\\', '%00', '%zz', '%%32%66', '..;', '%c3%a9'],
];
const originalArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc
      .tuple(
        fc.array(fc.constantFrom(...SEGMENTS), { maxLength: 5 }),
        fc.constantFrom('', '/', '?q=1', '?../admin', '#f'),
      )
      .map(([segs, tail]) => `/${segs.join('/')}${tail}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'http://127.0.0.1/admin',
      'http://evil.example/admin',
      '//evil.example/admin',
      'admin',
      '*',
      '/a b',
      '/sg/logon',
      '/ad\u00e9min',
    ),
  },
);

/** `value` most of the time, one of `faults` now and then (one malformed header a case, mostly). */
const mostly = <T>(value: T, ...faults: T[]): fc.Arbitrary<T> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(value) },
    { weight: 1, arbitrary: fc.constantFrom(...faults) },
  );

export const forwardAuthArb: fc.Arbitrary<ForwardAuthCase> = fc.record({
  kind: fc.constant('fwdauth' as const),
  endpoint: fc.constantFrom('/sg/auth', '/sg/forward-auth', '/sg/auth/logon'),
  cookie: fc.constantFrom('alice', 'bob', 'none', 'bogus', 'alice+bob', 'bob+alice'),
  uriHeader: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('nginx', 'traefik', 'both') },
    { weight: 1, arbitrary: fc.constantFrom('disagree', 'twice', 'none') },
  ),
  original: originalArb,
  forwardedHost: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('self', 'self', 'other') },
    { weight: 1, arbitrary: fc.constantFrom('dot', 'twice', 'none') },
  ),
  proto: mostly<ForwardAuthCase['proto']>('http', 'https', 'gopher', undefined),
  method: mostly<string | undefined>(undefined, 'GET', 'POST', 'G ET'),
  browser: fc.boolean(),
});

/** What the lane needs of the campaign: where, whose cookies, and how to report. */
export interface ForwardAuthLane {
  /** `127.0.0.1:PORT`, the gateway's own host. */
  host: string;
  /** The cookie header of a logged-on user. */
  cookieOf(user: 'alice' | 'bob'): string;
  count(outcome: string): void;
  violation(what: string): void;
}

/** The `rd` of a logon case: the original target on one of several hosts, or as it is. */
function returnAddress(c: ForwardAuthCase, host: string): string {
  const h = { self: host, other: 'evil.example', dot: `${host}.`, twice: `${host}@evil.example`, none: '' };
  if (!c.original.startsWith('/') || c.original.startsWith('//')) return c.original;
  return `${c.proto ?? 'http'}://${h[c.forwardedHost]}${c.original}`;
}

function requestHeaders(c: ForwardAuthCase, lane: ForwardAuthLane): string[] {
  const headers = ['host', lane.host];
  if (c.cookie === 'bogus') headers.push('cookie', 'MRHSession=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
  else if (c.cookie !== 'none')
    headers.push(
      'cookie',
      c.cookie
        .split('+')
        .map((u) => lane.cookieOf(u as 'alice' | 'bob'))
        .join('; '),
    );
  if (c.browser) headers.push('accept', 'text/html');
  if (c.endpoint === '/sg/auth/logon') return headers;
  const uri = {
    nginx: ['x-original-uri'],
    traefik: ['x-forwarded-uri'],
    both: ['x-original-uri', 'x-forwarded-uri'],
  };
  if (c.uriHeader === 'disagree') headers.push('x-original-uri', c.original, 'x-forwarded-uri', '/app');
  else if (c.uriHeader === 'twice') headers.push('x-original-uri', c.original, 'x-original-uri', '/app');
  else if (c.uriHeader !== 'none') for (const name of uri[c.uriHeader]) headers.push(name, c.original);
  const fh = { self: lane.host, other: 'evil.example', dot: '127.0.0.1.' };
  if (c.forwardedHost === 'twice')
    headers.push('x-forwarded-host', lane.host, 'x-forwarded-host', 'evil.example');
  else if (c.forwardedHost !== 'none') headers.push('x-forwarded-host', fh[c.forwardedHost]);
  if (c.proto) headers.push('x-forwarded-proto', c.proto);
  if (c.method) headers.push('x-forwarded-method', c.method);
  return headers;
}

/** Whose session the answer speaks for must be one the cookies carry, and the acl's choice. */
function checkAllowed(
  c: ForwardAuthCase,
  user: string | undefined,
  lane: ForwardAuthLane,
  what: string,
): void {
  const users = c.cookie.split('+');
  if (user === undefined || !users.includes(user)) lane.violation(`${what}: 200 for ${user ?? 'nobody'}`);
  else if (reachesAdmin(c.original) && user !== 'bob') lane.violation(`${what}: 200 for ${user} to /admin`);
}

/** A redirect stays on the gateway's host: a path of its own, or its own origin. */
function sameSite(location: string, host: string): boolean {
  if (/^\/(?![/\\])/.test(location)) return true;
  try {
    return new URL(location).host === host;
  } catch {
    return false;
  }
}

/**
 * Send one case over `client` and check the answer: only 200/302/400/401/403 (and the logon
 * form's own answers), a 200 only for an allowed session of a user the cookies carry, never for
 * /admin to anyone but bob, and every redirect on the gateway's host.
 */
export async function sendForwardAuth(
  client: Client,
  c: ForwardAuthCase,
  lane: ForwardAuthLane,
): Promise<void> {
  const path =
    c.endpoint === '/sg/auth/logon'
      ? `${c.endpoint}?rd=${encodeURIComponent(returnAddress(c, lane.host))}`
      : c.endpoint;
  const what = `fwdauth ${JSON.stringify({ ...c, kind: undefined })}`;
  let res;
  try {
    res = await client.request({ method: 'GET', path, headers: requestHeaders(c, lane) });
    await res.body.dump();
  } catch (err) {
    return lane.violation(`${(err as Error).message} for ${what}`);
  }
  const status = res.statusCode;
  lane.count(`fwdauth ${c.endpoint} ${status}`);
  const header = (name: string): string | undefined => {
    const v = res.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  };
  const location = header('location');
  if (location !== undefined && !sameSite(location, lane.host))
    lane.violation(`${what}: redirect to ${location}`);
  if (c.endpoint === '/sg/auth/logon') {
    if (![200, 302, 303, 400, 401, 429].includes(status)) lane.violation(`${what}: ${status}`);
    return;
  }
  if (![200, 302, 400, 401, 403].includes(status)) return lane.violation(`${what}: ${status}`);
  if (status === 200) checkAllowed(c, header('x-fuzz-user'), lane, what);
  if (status === 302 && (c.endpoint !== '/sg/forward-auth' || !c.browser))
    lane.violation(`${what}: 302 where a 401 is due`);
  const logon = status === 302 ? location : status === 401 ? header('x-sessiongate-logon') : undefined;
  if ((status === 302 || status === 401) && !logon?.startsWith('/sg/auth/logon?rd='))
    lane.violation(`${what}: ${status} without the logon URL (${logon ?? 'none'})`);
}
