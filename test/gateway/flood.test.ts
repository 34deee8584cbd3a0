import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { redisSkip, startRedis, type RedisServer } from '../support/redis-servers.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

// Session flooding over real sockets: every cookieless request starts an `inprogress` session,
// so a client that never keeps the cookie would fill the store for the policy timeout. By
// default an address keeps at most 20 in-progress sessions (max_in_progress_per_client_ip:
// {limit: 20, on_limit: evict_oldest}): the store closes that address's oldest in the same
// step as it creates the new one. Addresses other than 127.0.0.1 come through X-Forwarded-For
// of the trusted 127.0.0.1.

const REQUESTS = 2000;
const BOUND = 20;
const PARALLEL = 16;

/** `n` cookieless GETs from 127.0.0.1 over `parallel` keep-alive connections; the statuses seen. */
async function flood(url: string, n: number, parallel = PARALLEL): Promise<Map<number, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: parallel });
  const statuses = new Map<number, number>();
  let next = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const accept = next % 2 === 0 ? 'text/html' : 'application/json';
      const req = request(`${url}/app/${next}`, { agent, headers: { accept } }, (res) => {
        statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        next++;
        await one();
      }
    }),
  );
  agent.destroy();
  return statuses;
}

const skipRedis = redisSkip();
const STORES: { name: string; slack: number; url: () => string; skip?: string | false }[] = [
  { name: 'memory', slack: 0, url: () => 'memory' },
  { name: 'sqlite', slack: 0, url: () => 'sqlite:${DIR}/sessions.db' },
  // The per-address index is another slot than the session: creates racing from one address
  // may each leave one over (at most one per parallel connection), the next create trims.
  { name: 'redis', slack: PARALLEL, url: () => `${redis!.url}?prefix=flood${process.pid}`, skip: skipRedis },
];
let redis: RedisServer | undefined;

for (const store of STORES) {
  describe(`session flood, default limits (${store.name} store)`, { skip: store.skip || undefined }, () => {
    let fx: GatewayFixture;
    let upstream: Awaited<ReturnType<typeof testUpstream>>;
    before(async () => {
      if (store.name === 'redis') redis = await startRedis();
      upstream = await testUpstream();
      fx = await startTestGateway(
        `
store: ${store.url()}
keys: \${DIR}/keyring.json
trusted_proxies: [127.0.0.1]
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [logon, { authenticate: users }, allow]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
`,
        { UPSTREAM: upstream.url },
      );
    });
    after(async () => {
      await fx?.close();
      await upstream?.close();
      await redis?.stop();
      redis = undefined;
    });

    it(`${REQUESTS} cookieless requests from one address leave at most ${BOUND} sessions; logons still work`, async () => {
      // A browser elsewhere starts its logon before the flood and finishes it after.
      const elsewhere = new Browser(fx.gw.url);
      const xff = { 'x-forwarded-for': '192.0.2.50' };
      assert.equal((await elsewhere.fetch('/app', { headers: xff })).status, 200);

      const statuses = await flood(fx.gw.url, REQUESTS);
      // Redis: a racing create may evict a logon of the flood that is still running its policy;
      // that request ends like a denied logon (403), never as an error.
      const allowed = store.slack === 0 ? [200, 401] : [200, 401, 403];
      const seen = [...statuses.keys()].sort();
      assert.ok(
        seen.every((s) => allowed.includes(s)),
        `statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
      );
      const stats = await fx.gw.store.stats();
      assert.ok(stats.sessions <= BOUND + store.slack + 1, `${stats.sessions} sessions stored`);
      const flooder = await fx.gw.store.list({ clientIp: '127.0.0.1', limit: 1000 });
      if (store.slack === 0) assert.equal(flooder.sessions.length, BOUND);
      else
        assert.ok(flooder.sessions.length <= BOUND + store.slack, `${flooder.sessions.length} of 127.0.0.1`);
      // One more request from the address trims it back to the bound (the cleanup is the create).
      await flood(fx.gw.url, 1, 1);
      const trimmed = await fx.gw.store.list({ clientIp: '127.0.0.1', limit: 1000 });
      assert.equal(trimmed.sessions.length, BOUND);

      const done = await elsewhere.form(
        '/sg/logon',
        { username: 'alice', password: 'wonderland' },
        fx.gw.url,
      );
      assert.equal(done.status, 302, 'a logon begun at another address is never evicted');
      assert.equal((await elsewhere.fetch('/app', { headers: xff })).status, 200);

      // A browser at the flooding address itself: its session is the newest, so it logs on.
      const same = new Browser(fx.gw.url);
      assert.equal((await same.fetch('/app')).status, 200);
      assert.equal((await same.form('/sg/logon', { username: 'bob', password: 'builder' })).status, 302);
      assert.equal((await same.fetch('/app')).status, 200);
    });
  });
}

describe('session flood with on_limit: refuse', () => {
  let fx: GatewayFixture;
  let upstream: Awaited<ReturnType<typeof testUpstream>>;
  before(async () => {
    upstream = await testUpstream();
    fx = await startTestGateway(
      `
store: memory
keys: \${DIR}/keyring.json
profiles:
  default:
    max_in_progress_per_client_ip: { limit: 3, on_limit: refuse }
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
`,
      { UPSTREAM: upstream.url },
    );
  });
  after(async () => {
    await fx.close();
    await upstream.close();
  });

  it('refuses the address new sessions with 429 and keeps the ones it has', async () => {
    const statuses = await flood(fx.gw.url, 10, 1);
    assert.equal(statuses.get(429), 7);
    assert.equal(
      (statuses.get(200) ?? 0) + (statuses.get(401) ?? 0),
      3,
      'the first three got a form or a challenge',
    );
    const res = await fetch(`${fx.gw.url}/app`, { headers: { accept: 'application/json' } });
    assert.equal(res.status, 429);
    assert.equal(
      ((await res.json()) as { error: { code: string } }).error.code,
      'SG_ERR_CLIENT_IP_LIMIT_REACHED',
    );
    assert.equal((await fx.gw.store.stats()).sessions, 3);
  });
});
