import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/gateway/config/load.js';
import { startGateway } from '../../src/gateway/assemble.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from '../gateway/harness.js';
import { recordingLogger } from '../plugins/helpers.js';

const root = new URL('../../', import.meta.url).pathname;
const DAY = 86_400;
/** AD lastLogon of a moment: 100-ns ticks since 1601-01-01. */
const adTicks = (epochSeconds: number): string =>
  ((BigInt(epochSeconds) + 11_644_473_600n) * 10_000_000n).toString();

let upstream: Awaited<ReturnType<typeof testUpstream>>;
let fx: GatewayFixture;
const g = globalThis as unknown as { __trace?: string[]; __closed?: string[] };

before(async () => {
  upstream = await testUpstream();
  const now = Math.floor(Date.now() / 1000);
  fx = await startTestGateway(
    `
store: memory
keys: \${DIR}/keyring.json
trusted_proxies: [ 127.0.0.1/32 ]
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [ logon, { authenticate: users }, allow ]
  recent:
    cookie: { name: RecentSession }
    policy: [ logon, { authenticate: users }, { assign: { session.ad.last.attr.lastLogon: "${adTicks(now - DAY)}" } }, { event: lastLogon }, allow ]
  old:
    cookie: { name: OldSession }
    policy: [ logon, { authenticate: users }, { assign: { session.ad.last.attr.lastLogon: "${adTicks(now - 20 * DAY)}" } }, { event: lastLogon }, allow ]
rules: [ ${root}examples/rules/x-username.ts, ${root}test/rules/fixtures/closed.ts ]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /lan }, upstream: \${UPSTREAM}, rules: [ ${root}examples/rules/subnet.ts ] }
  - { match: { path: /api }, upstream: \${UPSTREAM}, rules: [ ${root}examples/rules/mrhsession-401.ts ] }
  - { match: { path: /recent }, upstream: \${UPSTREAM}, profile: recent, rules: [ ${root}examples/rules/last-logon.ts ] }
  - { match: { path: /old }, upstream: \${UPSTREAM}, profile: old, rules: [ ${root}examples/rules/last-logon.ts ] }
  - { match: { path: /trace }, upstream: \${UPSTREAM}, rules: [ ${root}test/rules/fixtures/trace.ts ] }
  - { match: { path: /bad }, upstream: \${UPSTREAM}, rules: [ ${root}test/rules/fixtures/bad.ts ] }
  - { match: { path: /counter }, upstream: \${UPSTREAM}, rules: [ ${root}test/rules/fixtures/counter.ts ] }
`,
    { UPSTREAM: upstream.url },
  );
});
after(async () => {
  await fx.close();
  await upstream.close();
});

async function logon(b: Browser, path: string): Promise<Response> {
  await b.fetch(path);
  return b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
}

describe('the four reference iRules as rules', () => {
  it('1. ACCESS_SESSION_STARTED: a client outside 192.168.255.0/24 is logged and refused', async () => {
    const outside = await new Browser(fx.gw.url).fetch('/lan', {
      headers: { 'x-forwarded-for': '10.9.8.7' },
    });
    assert.equal(outside.status, 403);
    const line = fx.logs.lines.find((l) => l.message === 'Unauthorized subnet');
    assert.equal(line?.fields.rule, `${root}examples/rules/subnet.ts`);
    assert.equal(line?.fields.event, 'ACCESS_SESSION_STARTED');
    assert.match(String(line?.fields.sessionId), /^[0-9a-f]{32}$/);
    assert.equal(await fx.gw.engine.get(String(line?.fields.sessionId)), null, 'the session was removed');
    const inside = await new Browser(fx.gw.url).fetch('/lan', {
      headers: { 'x-forwarded-for': '192.168.255.7' },
    });
    assert.equal(inside.status, 200);
    assert.match(await inside.text(), /Log on/);
  });

  it('2. ACCESS_POLICY_AGENT_EVENT lastLogon: 1 day ago → 1, 20 days ago → 0', async () => {
    for (const [path, cookie, expected] of [
      ['/recent', 'RecentSession', '1'],
      ['/old', 'OldSession', '0'],
    ] as const) {
      const b = new Browser(fx.gw.url);
      assert.equal((await logon(b, path)).status, 302);
      const id = fx.gw.engine.sid(b.jar.get(cookie)!);
      assert.equal(await fx.gw.engine.data.get(id, 'session.custom.lastLogonWithin2Weeks'), expected, path);
    }
    const logged = fx.logs.lines.filter((l) => /^lastLogon: \d+ seconds from current time$/.test(l.message));
    assert.equal(logged.length, 2);
    const seconds = logged.map((l) => Number(/\d+/.exec(l.message)![0]));
    assert.ok(Math.abs(seconds[0]! - DAY) < 120 && Math.abs(seconds[1]! - 20 * DAY) < 120, String(seconds));
  });

  it('3. HTTP_REQUEST: an MRHSession cookie naming no live session gets 401 and never reaches the upstream', async () => {
    const count = upstream.seen.length;
    const dead = await fetch(`${fx.gw.url}/api/x`, {
      headers: { cookie: 'MRHSession=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    });
    assert.equal(dead.status, 401);
    assert.equal(dead.headers.get('www-authenticate'), 'Basic realm="www.example.com"');
    assert.equal(upstream.seen.length, count);
    const none = await fetch(`${fx.gw.url}/api/x`, { headers: { accept: 'application/json' } });
    assert.equal(none.status, 401);
    assert.equal(
      none.headers.get('www-authenticate'),
      'Basic realm="sessiongate"',
      'no cookie: the normal challenge',
    );
    const b = new Browser(fx.gw.url);
    await logon(b, '/api/x');
    assert.equal((await b.fetch('/api/x')).status, 200, 'a live session passes');
  });

  it('4. ACCESS_ACL_ALLOWED: the upstream receives X-USERNAME', async () => {
    const b = new Browser(fx.gw.url);
    await logon(b, '/app');
    assert.equal((await b.fetch('/app')).status, 200);
    assert.equal(upstream.seen.at(-1)?.headers['x-username'], 'alice');
  });
});

describe('events, order and failures', () => {
  it('raises the events of a resource request in APM order; /sg/ URIs raise none', async () => {
    g.__trace = [];
    const api = new Browser(fx.gw.url, 'application/json');
    const res = await api.fetch('/trace', {
      headers: { authorization: `Basic ${Buffer.from('alice:wonderland').toString('base64')}` },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(g.__trace, [
      'HTTP_REQUEST',
      'ACCESS_SESSION_STARTED',
      'ACCESS_POLICY_COMPLETED:allow',
      'ACCESS_ACL_ALLOWED',
      'HTTP_RESPONSE',
    ]);
    g.__trace = [];
    await api.fetch('/sg/static/sg.css');
    assert.deepEqual(g.__trace, []);
  });

  it('rules read the session this request validated, and their own writes right after', async () => {
    const b = new Browser(fx.gw.url);
    await logon(b, '/counter');
    const first = await b.fetch('/counter');
    assert.equal(upstream.seen.at(-1)?.headers['x-counter'], '0->1 allow=true deny=false');
    assert.equal(first.headers.get('x-counter-after'), '1 live=true');
    // A write from outside between two requests is seen by the next one (no cache across requests).
    await fx.gw.engine.data.set(fx.gw.engine.sid(b.jar.get('MRHSession')!), 'session.custom.n', '41');
    const second = await b.fetch('/counter');
    assert.equal(upstream.seen.at(-1)?.headers['x-counter'], '41->42 allow=true deny=false');
    assert.equal(second.headers.get('x-counter-after'), '42 live=true');
  });

  it('rules after the policy read what the policy wrote, not the session as the request found it', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    assert.equal((await api.fetch('/counter')).status, 401, 'an inprogress session now exists');
    assert.ok(api.jar.get('MRHSession'));
    const res = await api.fetch('/counter', {
      headers: { authorization: `Basic ${Buffer.from('alice:wonderland').toString('base64')}` },
    });
    assert.equal(res.status, 200);
    assert.equal(upstream.seen.at(-1)?.headers['x-policy-result'], 'allow/allowed');
  });

  it('a request an HTTP_REQUEST rule answers is no session activity; the next one is', async () => {
    const b = new Browser(fx.gw.url);
    await logon(b, '/counter');
    const id = fx.gw.engine.sid(b.jar.get('MRHSession')!);
    const before = (await fx.gw.engine.get(id))!.lastAccessAt;
    fx.clock.advance(5_000);
    const answered = await b.fetch('/counter/answered');
    assert.equal(await answered.text(), 'live=true');
    assert.equal((await fx.gw.engine.get(id))!.lastAccessAt, before, 'not touched');
    assert.equal((await b.fetch('/counter')).status, 200);
    assert.equal((await fx.gw.engine.get(id))!.lastAccessAt, before + 5_000, 'touched');
    fx.clock.advance(200);
    assert.equal((await b.fetch('/counter')).status, 200);
    assert.equal(
      (await fx.gw.engine.get(id))!.lastAccessAt,
      before + 5_000,
      'coalesced within the resolution',
    );
  });

  it('ACCESS_SESSION_CLOSED sees every close once, with the snapshot and no HTTP', async () => {
    g.__closed = [];
    const b = new Browser(fx.gw.url);
    await logon(b, '/app');
    const id = fx.gw.engine.sid(b.jar.get('MRHSession')!);
    await fx.gw.engine.close(id, 'admin_kill');
    await fx.gw.engine.dispatch();
    await fx.gw.engine.dispatch();
    assert.deepEqual(g.__closed, [`${id} alice http=none`]);
  });

  it('a rule that throws or hangs gets the request a 500; the gateway keeps serving; errors are counted', async () => {
    const b = new Browser(fx.gw.url, 'application/json');
    const thrown = await b.fetch('/bad/throw');
    assert.equal(thrown.status, 500);
    assert.ok(fx.logs.lines.some((l) => l.message === 'rule failed' && l.fields.error === 'rule bug'));
    // A rule failing as the session starts: the same 500, and what it threw stays in the log.
    const atStart = await b.fetch('/bad/throw-at-start');
    assert.equal(atStart.status, 500);
    const answer = await atStart.text();
    assert.ok(!answer.includes('internal detail'), answer);
    assert.match(answer, /SG_ERR_INTERNAL/);
    assert.ok(fx.logs.lines.some((l) => l.fields.error === 'start rule bug: internal detail'));
    const route = fx.gw.gateway;
    assert.ok(route);
    const twice = await b.fetch('/bad/twice');
    assert.equal(twice.status, 500, 'respond may be called once per request');
    assert.equal((await b.fetch('/bad/ok')).status, 401, 'still serving');
  });

  it('a rule past its deadline is a 500 (rule_timeout_ms); HTTP_RESPONSE rules may await', async () => {
    const dir = fx.dir;
    const logger = recordingLogger();
    // 1 MiB in 64 KiB writes: most of it arrives while the HTTP_RESPONSE rule awaits.
    const big = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      for (let i = 0; i < 16; i++) res.write(Buffer.alloc(65_536, i));
      res.end();
    });
    await new Promise<void>((r) => big.listen(0, '127.0.0.1', r));
    const bigUrl = `http://127.0.0.1:${(big.address() as AddressInfo).port}`;
    const running = await startGateway(
      parseConfig(
        `store: memory\nkeys: ${dir}/k2.json\nrule_timeout_ms: 100\nroutes: [ { match: { path: /big }, upstream: "${bigUrl}", rules: [ ${root}test/rules/fixtures/bad.ts ] }, { upstream: "${upstream.url}", rules: [ ${root}test/rules/fixtures/bad.ts ] } ]\nprofiles: { default: { policy: [ allow ] } }\n`,
        't.yaml',
        dir,
      ),
      { logger, port: 0 },
    );
    try {
      const res = await fetch(`${running.url}/hang`);
      assert.equal(res.status, 500);
      assert.ok(logger.lines.some((l) => l.fields.reason === 'timeout'));
      const fine = await fetch(`${running.url}/fine`);
      assert.equal(fine.status, 200);
      assert.equal(fine.headers.get('x-after-await'), 'yes');
      const body = Buffer.from(await (await fetch(`${running.url}/big`)).arrayBuffer());
      assert.equal(body.length, 16 * 65_536);
      for (let i = 0; i < 16; i++) assert.equal(body[i * 65_536], i, `chunk ${i} in order`);
      const thrown = await fetch(`${running.url}/x/throw-response`);
      assert.equal(thrown.status, 500);
      assert.ok(logger.lines.some((l) => l.fields.error === 'response rule bug'));
      const hung = await fetch(`${running.url}/x/hang-response`);
      assert.equal(hung.status, 500);
      assert.ok(
        logger.lines.some((l) => l.fields.event === 'HTTP_RESPONSE' && l.fields.reason === 'timeout'),
      );
      assert.equal((await fetch(`${running.url}/fine`)).status, 200, 'still serving');
    } finally {
      big.close();
      await running.close(500);
    }
  });

  it('a rule file that does not load is a configuration error naming file and line', async () => {
    const dir = fx.dir;
    writeFileSync(
      join(dir, 'broken.ts'),
      'export default {\n  HTTP_REQUEST(ctx) {\n    return ctx..http;\n  },\n};\n',
    );
    writeFileSync(join(dir, 'typo.ts'), 'export default { HTTP_REQUST() {} };\n');
    for (const [file, pattern] of [
      ['broken.ts', /broken\.ts: line 3/],
      ['typo.ts', /typo\.ts: unknown event HTTP_REQUST/],
    ] as const) {
      await assert.rejects(
        startGateway(
          parseConfig(
            `store: memory\nkeys: ${dir}/k3.json\nrules: [ ./${file} ]\nroutes: [ { upstream: demo } ]\n`,
            'c.yaml',
            dir,
          ),
          {
            logger: recordingLogger(),
            port: 0,
          },
        ),
        (err: Error) => pattern.test(err.message),
      );
    }
  });
});
