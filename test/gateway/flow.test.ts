import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Browser, basic, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    inactivity_timeout: 60
    max_session_timeout: 3600
    max_sessions_per_user: { limit: 2, on_limit: evict_oldest }
    policy: [ logon, { authenticate: users }, { assign: { session.custom.greeting: "hello %{session.logon.last.username}" } }, allow ]
  closed:
    cookie: { name: ClosedSession }
    policy: [ deny ]
  away:
    cookie: { name: AwaySession }
    policy: [ { redirect: "https://example.org/elsewhere" } ]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /denied }, upstream: \${UPSTREAM}, profile: closed }
  - { match: { path: /away }, upstream: \${UPSTREAM}, profile: away }
  - { match: { path: /down }, upstream: "http://127.0.0.1:1" }
`;

const codeOf = async (res: Response): Promise<string> =>
  ((await res.json()) as { error: { code: string } }).error.code;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
});
after(async () => {
  await fx.close();
  await upstream.close();
});

async function logon(b: Browser, user = 'alice', password = 'wonderland', path = '/app'): Promise<void> {
  await b.fetch(path);
  const res = await b.form('/sg/logon', { username: user, password });
  assert.equal(res.status, 302);
}

describe('browser logon with the form', () => {
  it('shows the form, refuses a wrong password, rotates the token and returns to the landing URI', async () => {
    const b = new Browser(fx.gw.url);
    const first = await b.fetch('/app/page?x=1');
    assert.equal(first.status, 200);
    assert.match(await first.text(), /<form method="post" action="\/sg\/logon">/);
    const setCookie = first.headers.getSetCookie()[0] ?? '';
    assert.match(
      setCookie,
      /^MRHSession=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax$/,
      'no Secure on plain http',
    );
    const before = b.jar.get('MRHSession')!;

    const wrong = await b.form('/sg/logon', { username: 'alice', password: 'nope' });
    assert.equal(wrong.status, 200);
    assert.match(await wrong.text(), /Logon failed/);

    const ok = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(ok.status, 302);
    assert.equal(ok.headers.get('location'), '/app/page?x=1');
    const after = b.jar.get('MRHSession')!;
    assert.notEqual(after, before, 'token rotated at allow');
    assert.equal(await fx.gw.engine.exists(before), false, 'the pre-logon token is dead');

    const page = await b.fetch('/app/page?x=1');
    assert.equal(page.status, 200);
    assert.deepEqual(await page.json(), { ok: true, path: '/app/page?x=1' });
    const id = fx.gw.engine.sid(after);
    const s = await fx.gw.engine.get(id);
    assert.equal(s?.state, 'allow');
    assert.equal(s?.user, 'alice');
    assert.equal(s?.variables['session.policy.result'], 'allowed');
    assert.equal(s?.variables['session.custom.greeting'], 'hello alice');
    assert.equal(await fx.gw.engine.data.get(id, 'session.logon.last.username'), 'alice');
    assert.equal(
      await fx.gw.engine.data.get(id, 'session.logon.last.password', { secure: true }),
      undefined,
      'the policy ended: the password is gone (keep_password, test/gateway/logon-password.test.ts)',
    );
    assert.equal(await fx.gw.engine.data.get(id, 'session.server.landinguri'), '/app/page?x=1');
    assert.equal(await fx.gw.engine.data.get(id, 'session.user.clientip'), '127.0.0.1');
    assert.ok((await fx.gw.engine.data.get(id, 'session.user.agent')) !== undefined);
  });

  it('keeps the gateway cookie and hop-by-hop headers away from the upstream and the client', async () => {
    const b = new Browser(fx.gw.url);
    await logon(b);
    b.jar.set('other', 'kept');
    const res = await b.fetch('/hygiene', {
      headers: { 'x-forwarded-for': '6.6.6.6', connection: 'keep-alive' },
    });
    assert.equal(res.status, 200);
    const seen = upstream.seen.at(-1)!;
    assert.equal(seen.url, '/hygiene');
    assert.doesNotMatch(seen.headers.cookie ?? '', /MRHSession/);
    assert.match(seen.headers.cookie ?? '', /other=kept/);
    assert.equal(
      seen.headers['x-forwarded-for'],
      '127.0.0.1',
      'an untrusted client cannot forge its address',
    );
    assert.equal(seen.headers['x-forwarded-proto'], 'http');
    assert.equal(res.headers.get('x-hop'), null, 'headers named in Connection are dropped');
    assert.deepEqual(res.headers.getSetCookie(), ['app=1; Path=/']);
  });
});

describe('API clients with HTTP Basic', () => {
  it('get a 401 challenge, then are proxied on the same request that carries credentials', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    const challenge = await api.fetch('/api/items');
    assert.equal(challenge.status, 401);
    assert.equal(challenge.headers.get('www-authenticate'), 'Basic realm="sessiongate"');
    assert.equal(await codeOf(challenge), 'SG_ERR_LOGON_REQUIRED');

    const fresh = new Browser(fx.gw.url, 'application/json');
    const res = await fresh.fetch('/api/items', { headers: { authorization: basic('bob', 'builder') } });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true, path: '/api/items' });
    assert.ok(fresh.jar.get('MRHSession'));
    assert.equal(
      upstream.seen.at(-1)?.headers.authorization,
      undefined,
      'gateway credentials stay at the gateway',
    );
    const again = await fresh.fetch('/api/items/2');
    assert.equal(again.status, 200, 'the cookie alone is enough afterwards');

    const bad = await new Browser(fx.gw.url, 'application/json').fetch('/api', {
      headers: { authorization: basic('bob', 'wrong') },
    });
    assert.equal(bad.status, 401);
    assert.equal(await codeOf(bad), 'SG_ERR_LOGON_FAILED');
  });
});

describe('policy endings', () => {
  it('deny: 403 and the session closed with reason denied', async () => {
    const seen: string[] = [];
    await fx.gw.engine.onClose(`t-${Date.now()}`, (e) => void seen.push(e.reason));
    const res = await new Browser(fx.gw.url, 'application/json').fetch('/denied');
    assert.equal(res.status, 403);
    assert.equal(await codeOf(res), 'SG_ERR_ACCESS_DENIED');
    await fx.gw.engine.dispatch();
    assert.ok(seen.includes('denied'));
  });

  it('redirect: 302 to the configured URL', async () => {
    const res = await new Browser(fx.gw.url).fetch('/away');
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), 'https://example.org/elsewhere');
  });
});

describe('timeouts, logout and limits', () => {
  it('an idle session ends after the inactivity timeout; the next request starts over', async () => {
    const b = new Browser(fx.gw.url);
    await logon(b);
    assert.equal((await b.fetch('/x')).status, 200);
    fx.clock.advance(60_000);
    const res = await b.fetch('/x');
    assert.match(await res.text(), /Log on to sessiongate/);
  });

  it('a session past its lifetime (modify remaining) ends', async () => {
    const b = new Browser(fx.gw.url);
    await logon(b);
    await fx.gw.engine.modify(fx.gw.engine.sid(b.jar.get('MRHSession')!), { remaining: 5 });
    fx.clock.advance(5000);
    assert.match(await (await b.fetch('/x')).text(), /Log on to sessiongate/);
  });

  it('logout is a same-origin POST: closes the session and clears the cookie', async () => {
    const b = new Browser(fx.gw.url);
    await logon(b);
    const token = b.jar.get('MRHSession')!;
    const forged = await b.form('/sg/logout', {}, 'http://evil.example');
    assert.equal(forged.status, 403);
    assert.equal(await fx.gw.engine.exists(token), true);
    const res = await b.form('/sg/logout', {});
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Logged out/);
    assert.equal(b.jar.get('MRHSession'), undefined);
    assert.equal(await fx.gw.engine.exists(token), false);
  });

  it('the per-user limit evicts the oldest session', async () => {
    const browsers = [new Browser(fx.gw.url), new Browser(fx.gw.url), new Browser(fx.gw.url)];
    for (const b of browsers) {
      await logon(b, 'bob', 'builder');
      fx.clock.advance(10);
    }
    assert.match(await (await browsers[0]!.fetch('/x')).text(), /Log on/);
    assert.equal((await browsers[1]!.fetch('/x')).status, 200);
    assert.equal((await browsers[2]!.fetch('/x')).status, 200);
  });
});

describe('errors', () => {
  it('502 when the upstream is down, as a page for browsers and JSON for APIs', async () => {
    const b = new Browser(fx.gw.url);
    await logon(b, 'alice', 'wonderland', '/down');
    const page = await b.fetch('/down');
    assert.equal(page.status, 502);
    assert.match(await page.text(), /not reachable/);
    const api = new Browser(fx.gw.url, 'application/json');
    const res = await api.fetch('/down', { headers: { authorization: basic('alice', 'wonderland') } });
    assert.equal(res.status, 502);
    assert.equal(await codeOf(res), 'SG_ERR_UPSTREAM_UNAVAILABLE');
  });

  it('431 for oversized request headers', async () => {
    const res = await fetch(`${fx.gw.url}/x`, { headers: { 'x-big': 'a'.repeat(20_000) } });
    assert.equal(res.status, 431);
  });

  it('unknown gateway URIs are 404 and never reach the upstream', async () => {
    const count = upstream.seen.length;
    const res = await new Browser(fx.gw.url, 'application/json').fetch('/sg/nothing');
    assert.equal(res.status, 404);
    assert.equal(upstream.seen.length, count);
  });
});
