// Step-up re-authentication in forward-auth mode: the proxy's auth call for a route with
// reauth_within says "log on" when the session's logon is too old (attack: no 200 on an old
// logon), and the logon URL runs the step-up, then sends the browser on to the application.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { LOGON_HEADER } from '../../src/gateway/forward-auth.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
trusted_proxies: [127.0.0.1]
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [ logon, { authenticate: users }, allow ]
    identity_headers: { X-Remote-User: session.logon.last.username }
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /admin }, upstream: \${UPSTREAM}, reauth_within: 300 }
`;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let host: string;

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  host = new URL(fx.gw.url).host;
});
after(async () => {
  await fx.close();
  await upstream.close();
});

/** nginx's auth subrequest for `uri` with the session cookie. */
function authCall(uri: string, cookie: string): Promise<{ status: number; logon?: string; user?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${fx.gw.url}/sg/auth`,
      {
        headers: {
          'x-original-uri': uri,
          'x-original-method': 'GET',
          'x-forwarded-host': host,
          'x-forwarded-proto': 'http',
          cookie,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            logon: res.headers[LOGON_HEADER] as string | undefined,
            user: res.headers['x-remote-user'] as string | undefined,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('step-up re-authentication in forward-auth mode', () => {
  it('an old logon gets 401 for the route, 200 elsewhere; the logon URL re-authenticates and goes on', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/x');
    assert.equal((await b.form('/sg/logon', { username: 'alice', password: 'wonderland' })).status, 302);
    const cookie = () => `MRHSession=${b.jar.get('MRHSession')!}`;
    assert.equal((await authCall('/admin/a', cookie())).status, 200, 'a fresh logon passes');

    fx.clock.advance(301_000);
    const old = await authCall('/admin/a', cookie());
    assert.equal(old.status, 401, 'no 200 for an old logon');
    assert.equal(old.user, undefined);
    assert.equal(old.logon, `/sg/auth/logon?rd=${encodeURIComponent(`http://${host}/admin/a`)}`);
    assert.equal((await authCall('/other', cookie())).status, 200, 'other routes stay open');

    const form = await b.fetch(old.logon!);
    assert.equal(form.status, 200);
    assert.match(await form.text(), /name="password"/);
    const done = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(done.status, 302);
    assert.equal(done.headers.get('location'), old.logon);
    const back = await b.fetch(old.logon!);
    assert.equal(back.status, 302);
    assert.equal(back.headers.get('location'), '/admin/a');
    const fresh = await authCall('/admin/a', cookie());
    assert.equal(fresh.status, 200);
    assert.equal(fresh.user, 'alice');
  });
});
