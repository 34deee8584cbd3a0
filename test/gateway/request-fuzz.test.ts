import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Client } from 'undici';
import { rawRequest } from '../support/raw-http.js';
import { basic, startTestGateway, type GatewayFixture } from './harness.js';

// A fuzz campaign of the request path: generated requests (dot segments and encodings,
// absolute-form targets, Host variants, cookies, Authorization values) against a gateway whose
// /admin route only bob may use. The upstream resolves every path it receives as leniently as
// real servers do (decodes every escape, `\` as `/`, drops `;params`, merges slashes, resolves
// dot segments, ignores case), and the invariants are: the upstream never serves /admin to
// anyone but bob, never receives a request without a gateway-set user, and the gateway never
// answers 5xx or dies. `npm test` runs FUZZ_RUNS (default 2000) cases; `npm run fuzz` 100,000.

const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261205);

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [ logon, { authenticate: users }, allow ]
    identity_headers: { X-Fuzz-User: session.logon.last.username }
    logon_throttle: { per_user_address: { limit: 1000000, window: 60 }, per_user: { limit: 1000000, window: 60 }, per_address: { limit: 1000000, window: 60 } }
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /admin }, upstream: \${UPSTREAM}, acl: { users: [bob] } }
`;

/** The path as a lenient application would serve it. */
function resolvedByLenientServer(path: string): string {
  let p = path.split('?')[0] ?? '';
  for (let i = 0; i < 3; i++)
    p = p.replace(/%([0-9a-f]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  const out: string[] = [];
  for (const raw of p.replaceAll('\\', '/').split('/')) {
    const seg = raw.split(';')[0] ?? '';
    if (seg === '..') out.pop();
    else if (seg !== '' && seg !== '.') out.push(seg);
  }
  return `/${out.join('/')}`.toLowerCase();
}

const violations: string[] = [];
let served = 0;
let upstream: Server;
let fx: GatewayFixture;
let port: number;
let client: Client;
const cookies: Record<string, string> = {};

before(async () => {
  upstream = createServer((req, res) => {
    served++;
    const user = req.headers['x-fuzz-user'];
    const where = resolvedByLenientServer(req.url ?? '');
    if (typeof user !== 'string') violations.push(`no gateway user: ${req.url}`);
    else if ((where === '/admin' || where.startsWith('/admin/')) && user !== 'bob')
      violations.push(`${user} reached ${req.url}`);
    req.resume();
    res.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstreamUrl });
  port = Number(new URL(fx.gw.url).port);
  client = new Client(fx.gw.url, { pipelining: 1 });
  for (const [user, password] of [
    ['alice', 'wonderland'],
    ['bob', 'builder'],
  ] as const) {
    const res = await fetch(`${fx.gw.url}/app`, { headers: { authorization: basic(user, password) } });
    await res.text();
    cookies[user] = (res.headers.getSetCookie().findLast((c) => c.startsWith('MRHSession=')) ?? '').split(
      ';',
    )[0]!;
  }
});
after(async () => {
  await client?.close();
  await fx?.close();
  await new Promise<void>((r) => upstream?.close(() => r()));
});

// Mostly spellings that are decided on (and must land on the right route), some that are
// refused (encoded slashes, backslashes, NUL, malformed escapes, `..;`).
const segment = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.constantFrom(
      ...['admin', 'ADMIN', 'Admin', '%61dmin', '%41%44MIN', 'adm%69n', 'admin;x=1', 'admin;', '.', '..'],
      ...['%2e', '%2E%2e', '.%2e', '', 'x', 'app', 'sg', 'static', 'sg.css', 'logon', 'logout', 'a%20b'],
      ...['~', '%7e', '.well-known', 'jwks.json', '%c3%a9', '*', '%3f', '%23', 'a.b', '...'],
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('%2f', '%2F', '%5c', '\\', '%00', '%zz', '%', '%%32%66', '..;', '.;x'),
  },
);
const pathArb = fc
  .tuple(
    fc.array(segment, { minLength: 0, maxLength: 7 }),
    fc.constantFrom('', '', '/', '/', '?q=1', '?../admin', '?a=%2f', '#f'),
  )
  .map(([segs, tail]) => `/${segs.join('/')}${tail}`);
const targetArb = fc.oneof(
  { weight: 4, arbitrary: pathArb },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('http://', 'HTTP://', 'https://'),
        fc.constantFrom('127.0.0.1', 'evil.example', 'a@b', ''),
        pathArb,
      )
      .map(([scheme, host, path]) => `${scheme}${host}${path === '/' ? '' : path}`),
  },
);
const cookieArb = fc.constantFrom('alice', 'bob', 'none', 'bogus', 'alice+bob', 'bob+alice');
const authArb = fc.constantFrom(
  undefined,
  basic('alice', 'wonderland'),
  basic('bob', 'builder'),
  basic('bob', 'wrong'),
  basic('mallory', 'x'),
  'Basic !!!',
  'Bearer abc',
  'Basic ' + Buffer.from('bob').toString('base64'),
);
const hostArb = fc.constantFrom(
  ...['self', 'self', 'self', 'self', 'self', 'self', 'other', 'other'],
  'dup',
  'none',
);
const methodArb = fc.constantFrom('GET', 'GET', 'POST', 'HEAD', 'DELETE', 'OPTIONS');

function cookieHeader(which: string): string | undefined {
  if (which === 'none') return undefined;
  if (which === 'bogus') return 'MRHSession=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  return which
    .split('+')
    .map((u) => cookies[u])
    .join('; ');
}

async function send(c: {
  target: string;
  cookie: string;
  auth: string | undefined;
  host: string;
  method: string;
  fuzzedFraming: boolean;
}): Promise<number> {
  const headers: string[] = [];
  const self = `127.0.0.1:${port}`;
  if (c.host !== 'none') headers.push('host', c.host === 'other' ? 'evil.example' : self);
  if (c.host === 'dup') headers.push('host', 'evil.example');
  const cookie = cookieHeader(c.cookie);
  if (cookie) headers.push('cookie', cookie);
  if (c.auth) headers.push('authorization', c.auth);
  const libraryWouldSend =
    !c.fuzzedFraming &&
    (c.host === 'self' || c.host === 'other') &&
    /^(\/|https?:\/\/(127\.0\.0\.1|evil\.example)([/?]|$))/.test(c.target) &&
    !/[#\\\0]/.test(c.target);
  if (!libraryWouldSend) {
    // Raw bytes on their own connection: what a client library would refuse to send.
    let head = `${c.method} ${c.target} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    if (c.fuzzedFraming) head += 'Transfer-Encoding: gzip, chunked\r\n';
    return (await rawRequest(port, `${head}Connection: close\r\n\r\n`)).status;
  }
  const res = await client.request({ method: c.method as 'GET', path: c.target, headers });
  await res.body.dump();
  return res.statusCode;
}

describe(`request-path fuzz (${RUNS} cases, seed ${SEED})`, () => {
  it('the upstream never receives what the acl refuses; no 5xx; the gateway stays up', async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          target: targetArb,
          cookie: cookieArb,
          auth: authArb,
          host: hostArb,
          method: methodArb,
          fuzzedFraming: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
        }),
        async (c) => {
          const status = await send(c);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          assert.ok(status < 500, `${status} for ${JSON.stringify(c)}`);
          assert.deepEqual(violations, []);
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true, includeErrorInReport: true },
    );
    // A normal request still works at the end.
    const res = await fetch(`${fx.gw.url}/admin/x`, { headers: { cookie: cookies.bob! } });
    assert.equal(res.status, 200);
    const summary = [...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}: ${n}`);
    process.stdout.write(`fuzz: ${RUNS} requests, ${served} reached the upstream; ${summary.join(', ')}\n`);
  });
});
