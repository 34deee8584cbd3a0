/**
 * OpenID Connect sign-in cost (npm run bench:oidc; issue 19 "Measure"), in one run against a
 * real `oidc-provider` (test/support/oidc-provider.ts) on loopback, with the gateway, the
 * provider and a small upstream in this process:
 *
 * 1. the sign-in round trip, N times: the protected page (gateway: 302 to the provider), the
 *    provider's login (its interaction pages), the callback (gateway: the code redeemed at the
 *    provider's token endpoint, the ID token checked, the policy, the token rotated) and the page
 *    again; the gateway's share is the time of its two requests (its call to the token endpoint
 *    included), the provider's the rest;
 * 2. the cost of a proxied request of a signed-in session: CPU time of this process per
 *    request for an OIDC session and for a local-user session on the same kind of route,
 *    alternating rounds, so any per-request provider work would show as a difference.
 *
 * BENCH_SIGNINS (default 30), BENCH_REQUESTS (per round, default 2000), BENCH_ROUNDS (default 5).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/gateway/config/load.js';
import { startGateway } from '../src/gateway/assemble.js';
import { hashPassword } from '../src/plugins/builtin/password.js';
import { silentLogger } from '../src/core/logger.js';
import { startOidcProvider } from '../test/support/oidc-provider.js';
import { Browser, testUpstream } from '../test/gateway/harness.js';

const SIGNINS = Number(process.env.BENCH_SIGNINS ?? 30);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const REDIRECT = 'http://gw.bench/sg/oidc/callback';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-bench-oidc-'));
  const op = await startOidcProvider({ redirectUri: REDIRECT });
  const upstream = await testUpstream();
  writeFileSync(join(dir, 'oidc-secret'), `${op.clientSecret}\n`, { mode: 0o600 });
  const hash = await hashPassword('bench-password', { N: 1024, r: 8, p: 1 });
  writeFileSync(join(dir, 'users.yaml'), `users:\n  alice:\n    password: ${hash}\n`);
  const yaml = `
store: memory
keys: ${dir}/keyring.json
plugins:
  - { name: sso, runtime: builtin, type: oidc, timeout_ms: 15000, config: { issuer: "${op.issuer}", client_id: ${op.clientId}, client_secret_file: ./oidc-secret, redirect_uri: "${REDIRECT}", allow_insecure_http: true } }
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  sso: { cookie: { name: SSO }, policy: [ { authenticate: sso }, allow ], identity_headers: { X-User: session.logon.last.username } }
  local: { cookie: { name: LOCAL }, policy: [ logon, { authenticate: users }, allow ], identity_headers: { X-User: session.logon.last.username }, failure_delay_ms: { min: 0, max: 0 } }
routes:
  - { match: { path: /sso }, upstream: "${upstream.url}", profile: sso }
  - { match: { path: /local }, upstream: "${upstream.url}", profile: local }
`;
  const gw = await startGateway(parseConfig(yaml, 'bench.yaml', dir), { logger: silentLogger, port: 0 });
  try {
    console.log(
      `bench:oidc — ${SIGNINS} sign-ins, ${ROUNDS} rounds of ${REQUESTS} requests; node ${process.version}, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const sign = await signIns(gw.url, op);
    const sso = sign.browser;
    const local = new Browser(gw.url, 'application/json');
    const auth = `Basic ${Buffer.from('alice:bench-password').toString('base64')}`;
    if ((await local.fetch('/local/x', { headers: { authorization: auth } })).status !== 200)
      throw new Error('local logon failed');
    const cost = await requestCost(sso, local);
    console.log('\n| what | value |\n| --- | ---: |');
    console.log(
      `| sign-in round trip, p50 / p90 ms (${SIGNINS}) | ${median(sign.total).toFixed(1)} / ${pct(sign.total, 0.9).toFixed(1)} |`,
    );
    console.log(
      `| of which the gateway's two requests (its token call included), p50 ms | ${median(sign.gateway).toFixed(1)} |`,
    );
    console.log(`| of which the provider's login pages, p50 ms | ${median(sign.provider).toFixed(1)} |`);
    console.log(
      `| CPU per proxied request, OIDC session, µs (median of ${ROUNDS}) | ${median(cost.sso).toFixed(1)} |`,
    );
    console.log(
      `| CPU per proxied request, local-user session, µs (median of ${ROUNDS}) | ${median(cost.local).toFixed(1)} |`,
    );
    console.log(`| OIDC / local | ${(median(cost.sso) / median(cost.local)).toFixed(3)}× |`);
  } finally {
    await gw.close(1000);
    await upstream.close();
    await op.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** N full sign-ins; the times of each, and the gateway's share; the last browser stays signed in. */
async function signIns(base: string, op: Awaited<ReturnType<typeof startOidcProvider>>) {
  const total: number[] = [];
  const gateway: number[] = [];
  const provider: number[] = [];
  let browser = new Browser(base);
  for (let i = 0; i < SIGNINS; i++) {
    browser = new Browser(base);
    const t0 = performance.now();
    const first = await browser.fetch('/sso/page');
    const t1 = performance.now();
    const query = await op.signIn(first.headers.get('location') ?? '', 'alice');
    const t2 = performance.now();
    const back = await browser.fetch(`/sg/oidc/callback?${query}`);
    const t3 = performance.now();
    const page = await browser.fetch('/sso/page');
    const t4 = performance.now();
    if (back.status !== 302 || page.status !== 200)
      throw new Error(`sign-in ${i} failed (${back.status}, ${page.status})`);
    await page.arrayBuffer();
    total.push(t4 - t0);
    gateway.push(t1 - t0 + (t3 - t2));
    provider.push(t2 - t1);
  }
  return { total, gateway, provider, browser };
}

/** CPU µs of this process per proxied request, alternating OIDC and local rounds. */
async function requestCost(sso: Browser, local: Browser) {
  const out = { sso: [] as number[], local: [] as number[] };
  const round = async (b: Browser, path: string) => {
    const before = process.cpuUsage();
    for (let i = 0; i < REQUESTS; i++) {
      const res = await b.fetch(path);
      if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
      await res.arrayBuffer();
    }
    const used = process.cpuUsage(before);
    return (used.user + used.system) / REQUESTS;
  };
  await round(sso, '/sso/warm');
  await round(local, '/local/warm');
  for (let r = 0; r < ROUNDS; r++) {
    out.sso.push(await round(sso, '/sso/x'));
    out.local.push(await round(local, '/local/x'));
    console.log(
      `  round ${r + 1}: OIDC ${out.sso.at(-1)!.toFixed(1)} µs, local ${out.local.at(-1)!.toFixed(1)} µs`,
    );
  }
  return out;
}

await main();
