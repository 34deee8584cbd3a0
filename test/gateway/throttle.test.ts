import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { AdminMetrics } from '../../src/admin/metrics.js';
import type { AuditEvent } from '../../src/core/audit.js';
import { ManualClock } from '../../src/core/clock.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { throttledAddress } from '../../src/gateway/throttle.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { recordingLogger } from '../plugins/helpers.js';
import { Browser, basic, testUpstream } from './harness.js';

// Password guessing over real sockets: failed logons are counted in the store per user+address
// pair, per user and per address; over a limit the logon is refused with 429 before the
// password is checked, even the right one. Addresses are set through a trusted proxy's
// X-Forwarded-For (the gateway trusts 127.0.0.1 here).

interface Fixture {
  gw: RunningGateway;
  clock: ManualClock;
  audit: AuditEvent[];
  metrics: AdminMetrics;
  logs: ReturnType<typeof recordingLogger>;
  close(): Promise<void>;
}

let fixtures: Fixture[] = [];
afterEach(async () => {
  await Promise.all(fixtures.map((f) => f.close()));
  fixtures = [];
});

async function start(profileExtra = ''): Promise<Fixture> {
  const upstream = await testUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'sg-throttle-'));
  const hash = (pw: string) => hashPassword(pw, { N: 1024, r: 8, p: 1 });
  writeFileSync(
    join(dir, 'users.yaml'),
    `users:\n  alice:\n    password: ${await hash('wonderland')}\n  bob:\n    password: ${await hash('builder')}\n`,
  );
  const yaml = `
store: memory
keys: ${dir}/keyring.json
trusted_proxies: [127.0.0.1]
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    max_logon_attempts: 100
    policy: [logon, { authenticate: users }, allow]
${profileExtra}
routes:
  - { match: { path: / }, upstream: ${upstream.url} }
`;
  const clock = new ManualClock(Date.now());
  const logs = recordingLogger();
  const audit: AuditEvent[] = [];
  const metrics = new AdminMetrics({ clock });
  const gw = await startGateway(parseConfig(yaml, 'test.yaml', dir), {
    logger: logs,
    clock,
    port: 0,
    failureDelayMs: () => 0,
    audit: metrics.counting({ write: (e) => void audit.push(e) }),
  });
  const fx: Fixture = {
    gw,
    clock,
    audit,
    metrics,
    logs,
    close: async () => {
      await gw.close(1000);
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  fixtures.push(fx);
  return fx;
}

/** One HTTP Basic logon from a fresh cookieless client at `address`. */
async function basicLogon(fx: Fixture, user: string, password: string, address = '198.51.100.1') {
  const res = await fetch(`${fx.gw.url}/app`, {
    headers: { accept: 'application/json', authorization: basic(user, password), 'x-forwarded-for': address },
  });
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string } };
  return { status: res.status, code: body.error?.code, retryAfter: res.headers.get('retry-after') };
}

describe('logon throttle', () => {
  it('50 wrong passwords from one address: 5 are checked, the rest and then the right one get 429', async () => {
    const fx = await start();
    const answers = [];
    for (let i = 0; i < 50; i++) answers.push(await basicLogon(fx, 'alice', `guess${i}`));
    assert.deepEqual(
      answers.slice(0, 5).map((a) => a.status),
      [401, 401, 401, 401, 401],
    );
    for (const a of answers.slice(5)) {
      assert.equal(a.status, 429);
      assert.equal(a.code, 'SG_ERR_LOGON_THROTTLED');
      assert.equal(a.retryAfter, '900');
    }
    const right = await basicLogon(fx, 'alice', 'wonderland');
    assert.deepEqual([right.status, right.code], [429, 'SG_ERR_LOGON_THROTTLED'], 'even the right password');

    fx.clock.advance(899_000);
    assert.equal((await basicLogon(fx, 'alice', 'wonderland')).retryAfter, '1');
    fx.clock.advance(1000);
    assert.equal((await basicLogon(fx, 'alice', 'wonderland')).status, 200, 'after the window');
  });

  it('one address cannot lock a user out: an hour of guessing from it, the user logs on elsewhere', async () => {
    const fx = await start();
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 10; i++) await basicLogon(fx, 'bob', `x${round}.${i}`, '203.0.113.66');
      assert.equal((await basicLogon(fx, 'bob', 'builder', '203.0.113.66')).status, 429);
      assert.equal((await basicLogon(fx, 'bob', 'builder', '192.0.2.10')).status, 200, `round ${round}`);
      fx.clock.advance(900_000);
    }
    assert.equal(
      (await basicLogon(fx, 'alice', 'wonderland', '203.0.113.66')).status,
      200,
      'nor other users',
    );
  });

  it('guesses spread over addresses hit the per-user limit (30 an hour by default)', async () => {
    const fx = await start();
    for (let a = 1; a <= 6; a++) {
      for (let i = 0; i < 5; i++)
        assert.equal((await basicLogon(fx, 'alice', 'no', `192.0.2.${a}`)).status, 401);
    }
    const refused = await basicLogon(fx, 'alice', 'wonderland', '192.0.2.99');
    assert.deepEqual([refused.status, refused.retryAfter], [429, '3600']);
    assert.equal((await basicLogon(fx, 'bob', 'builder', '192.0.2.99')).status, 200);
    const line = fx.audit.find((e) => e.event === 'logon_throttled');
    assert.equal(line?.scope, 'user');
    assert.equal(line?.user, 'alice');
    assert.equal(line?.clientIp, '192.0.2.99');
    assert.ok(!JSON.stringify(fx.audit).includes('wonderland'), 'no password in the audit');
    const metric = await fx.metrics.registry.getSingleMetricAsString('sessiongate_logon_throttled_total');
    assert.match(metric, /sessiongate_logon_throttled_total\{scope="user"\} 1/);
  });

  it('per-address limit (configured) stops spraying one password over many users', async () => {
    const fx = await start(`    logon_throttle: { per_address: { limit: 3, window: 60 } }`);
    for (const user of ['u1', 'u2', 'u3'])
      assert.equal((await basicLogon(fx, user, 'Summer2026')).status, 401);
    const refused = await basicLogon(fx, 'alice', 'wonderland');
    assert.deepEqual([refused.status, refused.retryAfter], [429, '60']);
    assert.equal((await basicLogon(fx, 'alice', 'wonderland', '198.51.100.2')).status, 200);
    assert.ok(fx.logs.lines.some((l) => l.message === 'logon throttled' && l.fields.scope === 'address'));
  });

  it('parallel guesses cannot slip past the limit while the first are being checked', async () => {
    const fx = await start();
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => basicLogon(fx, 'alice', `p${i}`, '198.51.100.7')),
    );
    const checked = answers.filter((a) => a.status === 401).length;
    assert.equal(checked, 5, `checked ${checked} passwords`);
    assert.equal(answers.filter((a) => a.status === 429).length, 25);
  });

  it('a successful logon forgives the pair, not the user: guesses count again from zero there', async () => {
    const fx = await start();
    for (let i = 0; i < 4; i++) await basicLogon(fx, 'alice', 'no');
    assert.equal((await basicLogon(fx, 'alice', 'wonderland')).status, 200);
    for (let i = 0; i < 5; i++) assert.equal((await basicLogon(fx, 'alice', 'no')).status, 401, `try ${i}`);
    assert.equal((await basicLogon(fx, 'alice', 'no')).status, 429);
  });

  it('the logon form: 429 page that says when to try again, Retry-After, even for the right password', async () => {
    const fx = await start();
    const browser = new Browser(fx.gw.url);
    await browser.fetch('/app');
    for (let i = 0; i < 5; i++) {
      const page = await browser.form('/sg/logon', { username: 'bob', password: `w${i}` });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /Logon failed/);
    }
    const refused = await browser.form('/sg/logon', { username: 'bob', password: 'builder' });
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('retry-after'), '900');
    const html = await refused.text();
    assert.match(html, /Too many failed logons/);
    assert.match(html, /Try again in 15 minutes \(after \d\d:\d\d UTC\)/);
    assert.ok(!html.includes('builder'));
    fx.clock.advance(900_000);
    await browser.fetch('/app'); // the logon took longer than the policy timeout: start again
    const ok = await browser.form('/sg/logon', { username: 'bob', password: 'builder' });
    assert.equal(ok.status, 302);
    assert.equal((await browser.fetch('/app')).status, 200);
  });

  it('counts per /64 for IPv6 and as IPv4 for mapped addresses', () => {
    assert.equal(throttledAddress('2001:db8:1:2:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(throttledAddress('2001:DB8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(throttledAddress('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(throttledAddress('::1'), '0:0:0:0::/64');
    assert.equal(throttledAddress('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(throttledAddress('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(throttledAddress('192.0.2.1'), '192.0.2.1');
  });
});
