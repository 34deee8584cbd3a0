// The identity step of the request path, alone (issue 15, hole 4): stripping the client's
// identity headers, setting the identity headers, and the cached assertion, per request.
// Run: node --import tsx bench/identity.bench.ts  (medians of 7 runs of 1M requests each)
import type { IncomingMessage } from 'node:http';
import { ManualClock } from '../src/core/clock.js';
import type { SessionRecord } from '../src/core/session-types.js';
import { parseConfig } from '../src/gateway/config/load.js';
import { AssertionKeys } from '../src/gateway/identity/assertion.js';
import { setIdentityHeaders, stripClientHeaders } from '../src/gateway/identity/headers.js';
import { identityPlan } from '../src/gateway/identity/plan.js';
import { parseSigningKeys, newSigningKey } from '../src/session/signing-keys.js';

const N = 1_000_000;
const RUNS = 7;

/** Request heads as Node's parser leaves them: a browser's usual headers. */
function browserRequest(extra: string[] = []): IncomingMessage {
  const rawHeaders = [
    'Host',
    'app.example.org',
    'User-Agent',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126 Safari/537.36',
    'Accept',
    'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    'Accept-Language',
    'en-US,en;q=0.9',
    'Accept-Encoding',
    'gzip, deflate, br',
    'Cookie',
    'MRHSession=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; app=1',
    'Referer',
    'https://app.example.org/',
    'Sec-Fetch-Mode',
    'navigate',
    'Connection',
    'keep-alive',
    ...extra,
  ];
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!;
  return { headers, rawHeaders } as unknown as IncomingMessage;
}

const config = parseConfig(
  `
profiles:
  default:
    identity_headers: { X-USERNAME: session.logon.last.username }
    identity_assertion: true
routes:
  - { upstream: "http://127.0.0.1:1", match: { host: app.example.org } }
`,
  'bench.yaml',
  '/tmp',
).config;
const profile = config.profiles['default']!;
const route = config.routes[0]!;
const entry = newSigningKey();
const keys = new AssertionKeys(parseSigningKeys({ active: entry.id, keys: [entry] }, 'bench'));
const clock = new ManualClock(Date.now());
const withAssertion = identityPlan(profile, route, keys, clock);
const headersOnly = identityPlan(profile, { ...route, identity_assertion: false }, keys, clock);

const session = {
  id: 'bench-session',
  user: 'alice',
  variables: { 'session.logon.last.username': 'alice', 'session.logon.last.groups': 'ops,dev' },
} as unknown as SessionRecord;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** ns per call of `step`, median of RUNS runs. */
function measure(name: string, step: (i: number) => unknown): number {
  for (let i = 0; i < N / 10; i++) step(i); // warm up
  const runs: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) step(i);
    runs.push(Number(process.hrtime.bigint() - t0) / N);
  }
  const m = median(runs);
  console.log(
    `${name.padEnd(58)} ${m.toFixed(0).padStart(5)} ns  (runs ${runs.map((x) => x.toFixed(0)).join(' ')})`,
  );
  return m;
}

await setIdentityHeaders({}, withAssertion, session, 'app.example.org'); // signs once, then cached

const clean = browserRequest();
measure('strip: no identity header in the request (the usual case)', () =>
  stripClientHeaders(clean, withAssertion),
);
measure('strip: one forged X-Forwarded-User (a fresh request each)', () =>
  stripClientHeaders(browserRequest(['X-Forwarded-User', 'mallory']), withAssertion),
);
measure('  (the same fresh request without stripping: baseline)', () =>
  browserRequest(['X-Forwarded-User', 'mallory']),
);
measure('set: X-USERNAME only', () =>
  setIdentityHeaders({ 'x-forwarded-for': null }, headersOnly, session, 'h'),
);
measure('set: X-USERNAME + cached assertion', () =>
  setIdentityHeaders({ 'x-forwarded-for': null }, withAssertion, session, 'app.example.org'),
);
measure('  (the header object alone: baseline)', () => ({ 'x-forwarded-for': null }));
measure('whole step: strip + X-USERNAME + cached assertion', () => {
  stripClientHeaders(clean, withAssertion);
  return setIdentityHeaders({ 'x-forwarded-for': null }, withAssertion, session, 'app.example.org');
});

// A miss (a new session, or half the lifetime passed): one ES256 signature.
const t0 = performance.now();
const M = 500;
for (let i = 0; i < M; i++) {
  await setIdentityHeaders(
    {},
    withAssertion,
    { ...session, id: `s${i}` } as SessionRecord,
    'app.example.org',
  );
}
console.log(
  `${'sign: a new assertion (cache miss)'.padEnd(58)} ${(((performance.now() - t0) / M) * 1000).toFixed(0).padStart(5)} µs`,
);
