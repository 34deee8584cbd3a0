import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Client } from 'undici';
import { rawRequest } from '../support/raw-http.js';
import { startChildGateway, type ChildGateway } from './fuzz/child-gateway.js';
import { sendForwardAuth, type ForwardAuthLane } from './fuzz/forward-auth-cases.js';
import { lenientUpstream, reachesAdmin } from './fuzz/lenient-upstream.js';
import {
  caseArb,
  type HttpCase,
  type RaceCase,
  type RawCase,
  type RequestCase,
} from './fuzz/request-cases.js';
import { rawBytes } from './fuzz/request-cases.js';
import { basic, Browser } from './harness.js';
import { RawConnection } from './raw-connection.js';

// The request campaign: seeded generated requests against `sessiongate serve` (a child process,
// so its memory can be watched) with the example rules, a route acl (/admin: bob only), a route
// whose ACCESS_SESSION_STARTED rule refuses every session, and a logon policy. Structured
// requests go over kept-alive connections (their own connection when a client library would
// refuse them), raw malformed and cut-off ones over raw sockets, and concurrent logon attempts
// hit one in-progress session; as a trusted proxy, the campaign also asks the forward-auth URIs
// about fuzzed original requests (fuzz/forward-auth-cases.ts). The upstream resolves paths as leniently as real servers do
// (decodes every escape, `\` as `/`, drops `;params`, merges slashes, resolves dot segments,
// ignores case). Checked: the upstream never serves /admin to anyone but bob and never gets a
// request without a gateway-set user; no 5xx; every request answered or its connection closed
// within BOUND_MS; the gateway alive, with no error lines and bounded memory; a normal logon
// works at the end. `npm test`: 1500 cases; FUZZ_FULL=1 (`npm run fuzz`): 100,000 cases.

const FULL = process.env.FUZZ_FULL === '1';
const CASES = Number(process.env.FUZZ_RUNS ?? (FULL ? 100_000 : 1500));
const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
/** Kept-alive connections sending cases at once. */
const LANES = 4;
const BOUND_MS = 5000;
/** What the gateway's RSS may grow by between the end of the warm-up (a fifth) and the end. */
const RSS_GROWTH_LIMIT = 96 * 1024 * 1024;

const LOOSE = { limit: 1000000, window: 60 };
const CONFIG = `
listen: { host: 127.0.0.1, port: 0 }
store: memory
keys: ./keyring.json
admin: { enabled: false }
audit: { file: ./audit.log }
log: { level: warn }
trusted_proxies: [127.0.0.1]
rules:
  - \${ROOT}/examples/rules/mrhsession-401.ts
  - \${ROOT}/examples/rules/x-username.ts
  - \${ROOT}/examples/rules/last-logon.ts
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [ logon, { authenticate: users }, { event: lastLogon }, allow ]
    identity_headers: { X-Fuzz-User: session.logon.last.username, X-USERNAME: session.logon.last.username }
    failure_delay_ms: { min: 0, max: 5 }
    max_logon_attempts: 3
    logon_throttle: { per_user_address: ${JSON.stringify(LOOSE)}, per_user: ${JSON.stringify(LOOSE)}, per_address: ${JSON.stringify(LOOSE)} }
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /admin }, upstream: \${UPSTREAM}, acl: { users: [bob] } }
  - { match: { path: /refused }, upstream: \${UPSTREAM}, rules: [ \${ROOT}/examples/rules/subnet.ts ] }
`;

const violations: string[] = [];
const outcomes = new Map<string, number>();
let served = 0;
let requests = 0;
let upstream: Server;
let gw: ChildGateway;
let host: string;
const cookies = { alice: '', bob: '', fresh: '' };

const count = (key: string): void => void outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
const violation = (what: string): void => void (violations.length < 50 && violations.push(what));

before(async () => {
  upstream = await lenientUpstream((url, user) => {
    served++;
    if (user === undefined) violation(`upstream: no gateway user: ${url}`);
    else if (reachesAdmin(url) && user !== 'bob') violation(`upstream: ${user} reached ${url}`);
  });
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  gw = await startChildGateway(CONFIG.replaceAll('${UPSTREAM}', upstreamUrl));
  host = `127.0.0.1:${gw.port}`;
  for (const [user, password] of [
    ['alice', 'wonderland'],
    ['bob', 'builder'],
  ] as const) {
    const res = await fetch(`${gw.url}/app`, { headers: { authorization: basic(user, password) } });
    await res.arrayBuffer();
    assert.equal(res.status, 200, `${user} logs on`);
    cookies[user] = sessionCookie(res);
  }
  await refreshInProgress();
});
after(async () => {
  await gw?.stop();
  await new Promise<void>((r) => upstream?.close(() => r()));
});

function sessionCookie(res: Response): string {
  return (res.headers.getSetCookie().findLast((c) => c.startsWith('MRHSession=')) ?? '').split(';')[0]!;
}

/** A new in-progress session (its logon form being asked) for the cases that post forms. */
async function refreshInProgress(): Promise<void> {
  const res = await fetch(`${gw.url}/app`, { headers: { accept: 'text/html' } });
  await res.arrayBuffer();
  cookies.fresh = sessionCookie(res);
}

function cookieHeader(which: HttpCase['cookie']): string | undefined {
  if (which === 'none') return undefined;
  if (which === 'bogus') return 'MRHSession=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  if (which === 'fresh') return cookies.fresh;
  return which
    .split('+')
    .map((u) => cookies[u as 'alice' | 'bob'])
    .join('; ');
}

async function sendHttp(client: Client, c: HttpCase): Promise<void> {
  const headers: string[] = [];
  if (c.host !== 'none') headers.push('host', c.host === 'other' ? 'evil.example' : host);
  if (c.host === 'dup') headers.push('host', 'evil.example');
  const cookie = cookieHeader(c.cookie);
  if (cookie) headers.push('cookie', cookie);
  if (c.auth) headers.push('authorization', c.auth);
  const body = c.method === 'POST' ? c.form : undefined;
  if (body !== undefined)
    headers.push('content-type', 'application/x-www-form-urlencoded', 'origin', `http://${host}`);
  const libraryWouldSend =
    !c.fuzzedFraming &&
    (c.host === 'self' || c.host === 'other') &&
    /^(\/|https?:\/\/(127\.0\.0\.1|evil\.example)([/?]|$))/.test(c.target) &&
    !/[#\\\0]/.test(c.target);
  requests++;
  let status: number;
  if (!libraryWouldSend) {
    // Raw bytes on their own connection: what a client library would refuse to send.
    let head = `${c.method} ${c.target} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    if (c.fuzzedFraming) head += 'Transfer-Encoding: gzip, chunked\r\n';
    else if (body !== undefined) head += `Content-Length: ${Buffer.byteLength(body)}\r\n`;
    try {
      status = (await rawRequest(gw.port, `${head}Connection: close\r\n\r\n${body ?? ''}`, BOUND_MS)).status;
    } catch (err) {
      return violation(`no answer (${(err as Error).message.slice(0, 80)}) for ${JSON.stringify(c)}`);
    }
  } else {
    try {
      const res = await client.request({
        method: c.method as 'GET',
        path: c.target,
        headers,
        body: body ?? null,
      });
      await res.body.dump();
      status = res.statusCode;
    } catch (err) {
      return violation(`${(err as Error).message} for ${JSON.stringify(c)}`);
    }
  }
  count(`http ${status}`);
  if (status >= 500) violation(`${status} for ${JSON.stringify(c)}`);
}

/** Send raw bytes; read answers until the close, or probe a kept-alive connection once more. */
async function sendRaw(c: RawCase): Promise<void> {
  const { bytes, then } = rawBytes(c, host, { alice: cookies.alice, fresh: () => cookies.fresh });
  const conn = await RawConnection.open(gw.port);
  requests++;
  try {
    await conn.write(bytes);
    if (then === 'reset') {
      await new Promise((r) => setImmediate(r));
      conn.socket.resetAndDestroy();
      return count('raw reset');
    }
    if (then === 'fin') conn.socket.end();
    let probed = then === 'fin';
    const seen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await conn.read(BOUND_MS);
      if (r.kind === 'timeout')
        return violation(
          `raw ${c.template}: read ${i} neither answered nor closed in ${BOUND_MS} ms (${seen.join(', ')}; ${c.target})`,
        );
      if (r.kind === 'closed') {
        // Requests sent before a half-close are still answered (unless one said close).
        if (c.template === 'pipelined-then-fin' && seen.length < 2 && !seen.some((x) => x.endsWith('close')))
          return violation(`raw ${c.template}: ${seen.length} of 2 answered before the close (${c.target})`);
        return count(`raw ${c.template} closed`);
      }
      count(`raw ${r.status}`);
      seen.push(`${r.status} ${r.headers.get('connection') ?? ''}`);
      if (r.status >= 500) return violation(`raw ${c.template}: ${r.status}`);
      if (r.headers.get('connection') === 'close') continue; // the close must follow
      if (probed) return; // idle and kept alive, as it should be
      // Kept alive: the connection's next request must be answered (or the connection closed).
      probed = true;
      requests++;
      await conn.write(`GET /sg/static/sg.css HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    }
  } finally {
    conn.close();
  }
}

/** Concurrent logon attempts on one new session: each is answered, none with a 5xx. */
async function sendRace(c: RaceCase): Promise<void> {
  const accept = c.via === 'form' ? 'text/html' : 'application/json';
  const b = new Browser(gw.url, accept);
  await (await b.fetch('/app')).arrayBuffer();
  requests += 1 + c.attempts;
  const statuses = await Promise.all(
    Array.from({ length: c.attempts }, async (_, i) => {
      const password = i === c.right ? 'wonderland' : 'nope';
      const res =
        c.via === 'form'
          ? await b.form('/sg/logon', { username: 'alice', password })
          : await b.fetch('/app', { headers: { authorization: basic('alice', password) } });
      await res.arrayBuffer();
      return res.status;
    }),
  );
  for (const s of statuses) {
    count(`race ${c.via} ${s}`);
    if (![200, 302, 401, 403, 429].includes(s)) violation(`race ${JSON.stringify(c)}: ${statuses.join(',')}`);
  }
}

const forwardAuthLane: ForwardAuthLane = {
  get host() {
    return host;
  },
  cookieOf: (user) => cookies[user],
  count,
  violation,
};

function runCase(client: Client, c: RequestCase): Promise<void> {
  if (c.kind === 'http') return sendHttp(client, c);
  if (c.kind === 'raw') return sendRaw(c);
  if (c.kind === 'fwdauth') {
    requests++;
    return sendForwardAuth(client, c, forwardAuthLane);
  }
  return sendRace(c);
}

/** Cases in order, generated a thousand at a time from the seed (case i is the same every run). */
function* cases(): Generator<RequestCase> {
  for (let done = 0, chunk = 0; done < CASES; chunk++) {
    const n = Math.min(1000, CASES - done);
    for (const c of fc.sample(caseArb, { seed: SEED + chunk, numRuns: n })) yield c;
    done += n;
  }
}

describe(`request campaign (${CASES} cases, seed ${SEED})`, () => {
  it('no 5xx, nothing left hanging, the acl holds, the gateway stays up with bounded memory', async () => {
    const started = Date.now();
    const source = cases();
    let done = 0;
    let warmRss = 0;
    let peakRss = gw.rss();
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, gw.alive() ? gw.rss() : 0)), 250);
    const lane = async (): Promise<void> => {
      const client = new Client(gw.url, { pipelining: 1, headersTimeout: BOUND_MS, bodyTimeout: BOUND_MS });
      try {
        for (let next = source.next(); !next.done; next = source.next()) {
          await runCase(client, next.value);
          // This case's number: other lanes move `done` on while this one awaits below.
          const n = ++done;
          if (n === Math.floor(CASES / 5)) warmRss = gw.rss();
          if (n % 200 === 0) await refreshInProgress();
          if (!gw.alive()) return violation(`the gateway exited after ${done} cases`);
        }
      } finally {
        await client.close();
      }
    };
    try {
      await Promise.all(Array.from({ length: LANES }, lane));
    } finally {
      clearInterval(sampler);
    }
    assert.ok(gw.alive(), 'the gateway is alive');
    const endRss = gw.rss();
    peakRss = Math.max(peakRss, endRss);

    // A normal logon still works at the end.
    const b = new Browser(gw.url);
    assert.equal((await b.fetch('/app/end')).status, 200, 'the logon form');
    assert.equal((await b.form('/sg/logon', { username: 'bob', password: 'builder' })).status, 302);
    const app = await b.fetch('/admin/end');
    assert.equal(app.status, 200);
    assert.equal(await app.text(), 'ok');

    const figures = {
      campaign: 'requests',
      seed: SEED,
      cases: CASES,
      requests,
      reached_upstream: served,
      checked: [
        'no 5xx',
        `every request answered or its connection closed within ${BOUND_MS} ms`,
        'upstream never serves /admin to anyone but bob (lenient path resolution)',
        'upstream never gets a request without a gateway-set user',
        'forward-auth: 200 only for a session the cookies carry, never for /admin but to bob; redirects stay on the gateway',
        'gateway process alive, no error log lines',
        `RSS growth after warm-up under ${RSS_GROWTH_LIMIT / 1048576} MB`,
        'a normal logon works at the end',
      ],
      outcomes: Object.fromEntries([...outcomes].sort()),
      violations: violations.length,
      duration_ms: Date.now() - started,
      rss_mb: { warm: mb(warmRss), end: mb(endRss), peak: mb(peakRss) },
    };
    if (process.env.FUZZ_FIGURES_DIR)
      writeFileSync(join(process.env.FUZZ_FIGURES_DIR, 'requests.json'), JSON.stringify(figures, null, 2));
    process.stdout.write(`request campaign: ${JSON.stringify({ ...figures, outcomes: undefined })}\n`);

    assert.deepEqual(violations, []);
    assert.deepEqual(gw.errorLines(), []);
    assert.ok(warmRss > 0, 'the RSS after the warm-up was read');
    assert.ok(endRss - warmRss < RSS_GROWTH_LIMIT, `RSS grew from ${mb(warmRss)} MB to ${mb(endRss)} MB`);
  });
});

const mb = (bytes: number): number => Math.round(bytes / 1048576);
