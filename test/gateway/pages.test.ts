import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../support/raw-http.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

// The gateway's own pages as a user meets them: a "Log out" link, a mistyped password, the end
// of a logon after too many failures; and the JSON answers API clients get instead.

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    max_logon_attempts: 3
    policy: [logon, { authenticate: users }, allow]
  strict:
    cookie: { name: StrictSession }
    max_logon_attempts: 3
    logon_throttle: { per_user_address: { limit: 3, window: 600 } }
    policy: [logon, { authenticate: users }, allow]
  closed:
    cookie: { name: ClosedSession }
    policy: [deny]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /closed }, upstream: \${UPSTREAM}, profile: closed }
  - { match: { path: /strict }, upstream: \${UPSTREAM}, profile: strict }
`;

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

const port = (): number => Number(new URL(fx.gw.url).port);

describe('GET /sg/logout (a plain "Log out" link)', () => {
  it('shows browsers a page whose button posts the logout form to this site', async () => {
    const b = new Browser(fx.gw.url);
    const res = await b.fetch('/sg/logout');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /form-action 'self'/);
    const html = await res.text();
    assert.match(html, /<h1>Log out<\/h1>/);
    assert.match(
      html,
      /<form method="post" action="\/sg\/logout"><button type="submit">Log out<\/button><\/form>/,
    );
  });

  it('does not log out by itself: the session lives until the form is posted', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/app');
    assert.equal((await b.form('/sg/logon', { username: 'alice', password: 'wonderland' })).status, 302);
    const token = b.jar.get('MRHSession')!;
    await b.fetch('/sg/logout');
    assert.equal(await fx.gw.engine.exists(token), true);
    const out = await b.form('/sg/logout', {});
    assert.equal(out.status, 200);
    assert.match(await out.text(), /Logged out/);
    assert.equal(await fx.gw.engine.exists(token), false);
  });

  it('tells API clients to POST (405 JSON, Allow: POST); HEAD answers without a body', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    const res = await api.fetch('/sg/logout');
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await res.json(), {
      error: {
        code: 'SG_ERR_METHOD_NOT_ALLOWED',
        message: 'Log out with POST /sg/logout (with the session cookie).',
      },
    });
    const head = await rawRequest(
      port(),
      'HEAD /sg/logout HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n',
    );
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });
});

describe('a failed logon', () => {
  it('shows the form again with the user name kept (escaped), never the password', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/app');
    const name = 'al"ice<b>&';
    const res = await b.form('/sg/logon', { username: `  ${name} `, password: 'pw-"secret"<x>' });
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /Logon failed/);
    assert.match(html, /name="username" autocomplete="username" required value="al&#34;ice&#60;b&#62;&#38;"/);
    assert.match(html, /name="password" type="password" autocomplete="current-password" required autofocus>/);
    assert.ok(!html.includes('secret'), 'the password is not echoed');
    assert.ok(!html.includes('<b>'), 'the name is escaped');
    assert.equal(html.match(/autofocus/g)?.length, 1);
  });

  it('the first form has an empty user name with the focus on it', async () => {
    const html = await (await new Browser(fx.gw.url).fetch('/app')).text();
    assert.match(html, /name="username" autocomplete="username" required autofocus value=""/);
  });
});

describe('the denied page after too many failed logons', () => {
  it('says what happened and links to a new logon at the page asked for', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/app/report?id=7');
    for (let i = 0; i < 2; i++) {
      assert.equal((await b.form('/sg/logon', { username: 'alice', password: `no${i}` })).status, 200);
    }
    const res = await b.form('/sg/logon', { username: 'alice', password: 'no2' });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('retry-after'), null, 'no throttle applies yet');
    const html = await res.text();
    assert.match(html, /<h1>Access denied<\/h1>/);
    assert.match(html, /Logon failed 3 times in a row, so this logon was ended\./);
    assert.match(html, /<a href="\/app\/report\?id=7">Start a new logon<\/a>/);
    assert.equal(b.jar.get('MRHSession'), undefined, 'the cookie is cleared');
    // The link works: a new session, the logon form.
    const again = await b.fetch('/app/report?id=7');
    assert.match(await again.text(), /<form method="post" action="\/sg\/logon">/);
  });

  it('says when a new logon can be tried when the throttle now refuses this user here', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/strict/x');
    for (let i = 0; i < 2; i++) await b.form('/sg/logon', { username: 'bob', password: `no${i}` });
    const res = await b.form('/sg/logon', { username: 'bob', password: 'no2' });
    assert.equal(res.status, 403);
    assert.equal(res.headers.get('retry-after'), '600');
    const html = await res.text();
    assert.match(html, /Logon failed 3 times in a row/);
    assert.match(html, /a new logon can be tried in 10 minutes \(after \d\d:\d\d UTC\)/);
    assert.match(html, /<a href="\/strict\/x">Start a new logon<\/a> after \d\d:\d\d UTC\./);
    // Until then a new logon is refused with the same time; afterwards it works.
    await b.fetch('/strict/x');
    assert.equal((await b.form('/sg/logon', { username: 'bob', password: 'builder' })).status, 429);
    fx.clock.advance(600_000);
    await b.fetch('/strict/x');
    assert.equal((await b.form('/sg/logon', { username: 'bob', password: 'builder' })).status, 302);
  });

  it('API clients get the same in the JSON error', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    const auth = (pw: string) => ({
      authorization: 'Basic ' + Buffer.from(`carol:${pw}`).toString('base64'),
    });
    for (let i = 0; i < 2; i++)
      assert.equal((await api.fetch('/app', { headers: auth(`no${i}`) })).status, 401);
    const res = await api.fetch('/app', { headers: auth('no2') });
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), {
      error: {
        code: 'SG_ERR_ACCESS_DENIED',
        message: 'Logon failed 3 times in a row, so this logon was ended. Start a new logon to try again.',
      },
    });
  });

  it('a denial that is no logon failure keeps its own reason, without a new-logon offer', async () => {
    const res = await new Browser(fx.gw.url).fetch('/closed');
    assert.equal(res.status, 403);
    const html = await res.text();
    assert.match(html, /Access was denied\./);
    assert.doesNotMatch(html, /Start a new logon|Logon failed/);
  });
});

describe('a cross-origin POST /sg/logon', () => {
  async function pending(): Promise<string> {
    const b = new Browser(fx.gw.url);
    await b.fetch('/app');
    return b.jar.get('MRHSession')!;
  }

  it('gets the JSON error when the client does not accept HTML (fetch)', async () => {
    const token = await pending();
    const res = await fetch(`${fx.gw.url}/sg/logon`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        accept: 'application/json',
        cookie: `MRHSession=${token}`,
        origin: 'https://evil.example',
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'username=alice&password=wonderland',
    });
    assert.equal(res.status, 403);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'SG_ERR_ORIGIN_MISMATCH');
    const s = await fx.gw.engine.validate(token);
    assert.ok(s.valid && s.session.state === 'inprogress', 'the logon did not run');
  });

  it('gets the JSON error without any Accept header (raw socket); a browser still gets the page', async () => {
    const token = await pending();
    const body = 'username=alice&password=wonderland';
    const request = (accept: string) =>
      rawRequest(
        port(),
        `POST /sg/logon HTTP/1.1\r\nHost: 127.0.0.1:${port()}\r\n${accept}Cookie: MRHSession=${token}\r\n` +
          `Origin: https://evil.example\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
          `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
    const raw = await request('');
    assert.equal(raw.status, 403);
    assert.deepEqual(raw.headers.get('content-type'), ['application/json']);
    assert.equal((JSON.parse(raw.body) as { error: { code: string } }).error.code, 'SG_ERR_ORIGIN_MISMATCH');
    const page = await request('Accept: text/html\r\n');
    assert.equal(page.status, 403);
    assert.match(page.headers.get('content-type')?.[0] ?? '', /^text\/html/);
    assert.match(page.body, /This form must be sent from this site\./);
  });

  it('a form too large gets JSON too when the client does not accept HTML', async () => {
    const token = await pending();
    const res = await fetch(`${fx.gw.url}/sg/logon`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        accept: 'application/json',
        cookie: `MRHSession=${token}`,
        origin: fx.gw.url,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'username=' + 'a'.repeat(20_000),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'SG_ERR_BAD_REQUEST');
  });
});
