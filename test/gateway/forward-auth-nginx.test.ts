// Forward-auth through a real nginx (`auth_request`), configured as docs/forward-auth.md says:
// nginx serves the application itself and asks the gateway about every request; the gateway's
// logon pages are served under /sg/ of the same host.
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { forwardAuthServer, nginxRequired, nginxSkip, startNginx, type Nginx } from '../support/nginx.js';
import { rawRequest } from '../support/raw-http.js';
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
    identity_headers: { X-Remote-User: session.logon.last.username, X-Remote-Groups: session.logon.last.groups }
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /admin }, upstream: \${UPSTREAM}, acl: { users: [bob] } }
`;

const skip = nginxSkip();
if (skip && nginxRequired()) throw new Error(skip);

/** The application nginx serves: it answers with what it was sent. */
interface App {
  server: Server;
  port: number;
  seen: { url: string; headers: IncomingHttpHeaders }[];
}

async function startApp(): Promise<App> {
  const seen: App['seen'] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ app: true, url: req.url, user: req.headers['x-remote-user'] ?? null }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

let fx: GatewayFixture;
let nginx: Nginx;
let app: App;
let placeholder: Awaited<ReturnType<typeof testUpstream>>;

before(async () => {
  if (skip) return;
  app = await startApp();
  placeholder = await testUpstream(); // the route's own upstream: never used in this mode
  fx = await startTestGateway(CONFIG, { UPSTREAM: placeholder.url });
  const gateway = new URL(fx.gw.url).host;
  nginx = await startNginx((port) =>
    forwardAuthServer({
      port,
      gateway,
      app: `127.0.0.1:${app.port}`,
      identity: ['X-Remote-User', 'X-Remote-Groups'],
    }),
  );
});

after(async () => {
  if (skip) return;
  await nginx?.stop();
  await fx?.close();
  await placeholder?.close();
  await new Promise<void>((r) => app?.server.close(() => r()));
});

/** Log a browser on through nginx for `path`; the application's answer to it. */
async function logOn(b: Browser, path: string, user: string, password: string): Promise<Response> {
  const first = await b.fetch(path);
  assert.equal(first.status, 302, nginx.errors());
  const logon = new URL(first.headers.get('location')!, nginx.url);
  assert.equal(logon.pathname, '/sg/auth/logon');
  assert.equal(logon.searchParams.get('rd'), `${nginx.url}${path}`);
  const form = await b.fetch(logon.pathname + logon.search);
  assert.equal(form.status, 200);
  assert.match(await form.text(), /action="\/sg\/logon"/);
  const done = await b.form('/sg/logon', { username: user, password });
  assert.equal(done.status, 302);
  assert.equal(done.headers.get('location'), path);
  return b.fetch(path);
}

describe('forward-auth through nginx auth_request', { skip }, () => {
  it('no session: nginx redirects to the logon; logon: the page asked for, with the identity', async () => {
    const b = new Browser(nginx.url);
    const before = app.seen.length;
    const page = await logOn(b, '/app/page?x=1&y=%2F', 'alice', 'wonderland');
    assert.equal(page.status, 200);
    const body = (await page.json()) as { app: boolean; url: string; user: string };
    assert.deepEqual(body, { app: true, url: '/app/page?x=1&y=%2F', user: 'alice' });
    // The application saw only the request after logon (nginx served it, not the gateway).
    assert.equal(app.seen.length, before + 1);
    assert.equal(
      fx.gw.engine && (await fx.gw.engine.list()).sessions.filter((s) => s.state === 'allow').length,
      1,
    );
  });

  it('other methods pass the same check: a POST with a body reaches the application', async () => {
    const b = new Browser(nginx.url);
    await (await logOn(b, '/app/start', 'alice', 'wonderland')).arrayBuffer();
    const res = await b.fetch('/app/form', {
      method: 'POST',
      body: 'a=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 200, nginx.errors().slice(-600));
    assert.equal(((await res.json()) as { user: string }).user, 'alice');
    const anon = await new Browser(nginx.url).fetch('/app/form', { method: 'POST', body: 'a=1' });
    assert.equal(anon.status, 302);
  });

  it('a client-sent identity header never reaches the application as the user', async () => {
    const b = new Browser(nginx.url);
    await (await logOn(b, '/app/one', 'alice', 'wonderland')).arrayBuffer();
    const res = await b.fetch('/app/two', {
      headers: { 'x-remote-user': 'bob', 'x-remote-groups': 'admins' },
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const seen = app.seen.at(-1)!;
    assert.equal(seen.url, '/app/two');
    assert.equal(seen.headers['x-remote-user'], 'alice');
    // alice has no groups: the header is gone, not the client's.
    assert.equal(seen.headers['x-remote-groups'], undefined);
    // Without a session the client's header gets nobody in.
    const anon = new Browser(nginx.url);
    const refused = await anon.fetch('/app/two', { headers: { 'x-remote-user': 'alice' } });
    assert.equal(refused.status, 302);
    assert.equal(app.seen.at(-1), seen);
  });

  it('the route’s acl: 403 for alice on /admin in every spelling; bob gets in', async () => {
    const alice = new Browser(nginx.url);
    await (await logOn(alice, '/app', 'alice', 'wonderland')).arrayBuffer();
    const cookie = [...alice.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const count = app.seen.length;
    for (const target of ['/admin', '/admin/', '//admin', '/x/../admin', '/%61dmin', '/ADMIN', '/admin;x']) {
      const r = await rawRequest(
        nginx.port,
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${nginx.port}\r\nCookie: ${cookie}\r\n` +
          `X-Original-URI: /app\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(r.status, 403, `${target}: ${r.status}`);
    }
    assert.equal(app.seen.length, count, 'the application saw none of them');
    const bob = new Browser(nginx.url);
    const res = await logOn(bob, '/admin', 'bob', 'builder');
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { user: string }).user, 'bob');
  });

  it('forged original-request headers from a peer that is not a trusted proxy are refused', async () => {
    const alice = new Browser(nginx.url);
    await (await logOn(alice, '/app', 'alice', 'wonderland')).arrayBuffer();
    const cookie = [...alice.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const gw = new URL(fx.gw.url);
    const answer = await new Promise<{ status: number; body: string; user: unknown }>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: Number(gw.port),
          path: '/sg/auth',
          localAddress: '127.0.0.2',
          headers: {
            host: `127.0.0.1:${nginx.port}`,
            cookie,
            'x-original-uri': '/app',
            'x-forwarded-host': `127.0.0.1:${nginx.port}`,
          },
        },
        (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body, user: res.headers['x-remote-user'] }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(answer.status, 403);
    assert.match(answer.body, /SG_ERR_FORWARD_AUTH_UNTRUSTED/);
    assert.equal(answer.user, undefined);
  });
});
