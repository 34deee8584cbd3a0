// Forward-auth mode over real sockets, without a proxy in between: the calls nginx, Traefik and
// Caddy make are written here by hand, attacks first (test/gateway/forward-auth-nginx.test.ts
// goes through a real nginx).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { landingLocation } from '../../src/gateway/forward-auth-target.js';
import type { ActiveRoute } from '../../src/gateway/router.js';
import { rawRequest } from '../support/raw-http.js';
import { basic, Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
trusted_proxies: [127.0.0.1]
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    inactivity_timeout: 600
    policy: [ logon, { authenticate: users }, allow ]
    identity_headers: { X-Remote-User: session.logon.last.username, X-Remote-Groups: session.logon.last.groups }
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /admin }, upstream: \${UPSTREAM}, acl: { users: [bob] } }
  - { match: { path: /files }, upstream: \${UPSTREAM}, allow_encoded_slashes: true }
  - { match: { host: app.example.test, path: / }, upstream: \${UPSTREAM} }
`;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let port: number;
let host: string;
const cookies: Record<string, string> = {};

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A GET from a given local address (127.0.0.1 is the trusted proxy), headers as given. */
function call(path: string, headers: [string, string][], from = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const flat = headers.flat();
    const req = request(
      { host: '127.0.0.1', port, path, localAddress: from, headers: ['Host', host, ...flat] },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** nginx's auth subrequest for `uri` with the given session cookie. */
const nginxCall = (uri: string, cookie = '', extra: [string, string][] = [], path = '/sg/auth') =>
  call(path, [
    ['X-Original-URI', uri],
    ['X-Original-Method', 'GET'],
    ['X-Forwarded-Host', host],
    ['X-Forwarded-Proto', 'http'],
    ...(cookie ? ([['Cookie', cookie]] as [string, string][]) : []),
    ...extra,
  ]);

async function cookieOf(user: string, password: string): Promise<string> {
  const res = await fetch(`${fx.gw.url}/app`, { headers: { authorization: basic(user, password) } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const set = res.headers.getSetCookie().findLast((c) => c.startsWith('MRHSession=')) ?? '';
  return set.split(';')[0] ?? '';
}

const code = (a: Answer): string => (JSON.parse(a.body) as { error: { code: string } }).error.code;

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  port = Number(new URL(fx.gw.url).port);
  host = `127.0.0.1:${port}`;
  cookies.alice = await cookieOf('alice', 'wonderland');
  cookies.bob = await cookieOf('bob', 'builder');
});
after(async () => {
  await fx.close();
  await upstream.close();
});

describe('forward-auth: who may ask', () => {
  it('a peer not in trusted_proxies is refused, even with a valid cookie and forged headers', async () => {
    for (const path of ['/sg/auth', '/sg/forward-auth']) {
      const a = await call(
        path,
        [
          ['X-Original-URI', '/admin'],
          ['X-Forwarded-Uri', '/admin'],
          ['X-Forwarded-Host', host],
          ['Cookie', cookies.bob!],
        ],
        '127.0.0.2',
      );
      assert.equal(a.status, 403);
      assert.equal(code(a), 'SG_ERR_FORWARD_AUTH_UNTRUSTED');
      assert.equal(a.headers['x-remote-user'], undefined);
    }
  });

  it('missing, repeated or disagreeing forwarding headers are refused (400), never guessed', async () => {
    const cases: [string, string][][] = [
      [['X-Forwarded-Host', host]], // no URI
      [['X-Original-URI', '/app']], // no host
      [
        ['X-Original-URI', '/app'],
        ['X-Forwarded-Host', host],
        ['X-Forwarded-Host', 'other.example'],
      ],
      [
        ['X-Original-URI', '/app'],
        ['X-Forwarded-Uri', '/admin'],
        ['X-Forwarded-Host', host],
      ],
      [
        ['X-Original-URI', '/app'],
        ['X-Forwarded-Host', 'a b'],
      ],
      [
        ['X-Original-URI', '/app'],
        ['X-Forwarded-Host', 'evil.example@127.0.0.1'],
      ],
      [
        // nginx's server_name matches with the dot; a route's host would not, taking the catch-all.
        ['X-Original-URI', '/app'],
        ['X-Forwarded-Host', 'app.example.test.'],
      ],
      [
        ['X-Original-URI', '/app'],
        ['X-Original-Method', 'GE T'],
        ['X-Forwarded-Host', host],
      ],
    ];
    for (const headers of cases) {
      const a = await call('/sg/auth', [...headers, ['Cookie', cookies.alice!]]);
      assert.equal(a.status, 400, JSON.stringify(headers));
      assert.equal(code(a), 'SG_ERR_FORWARD_AUTH_HEADERS');
    }
  });
});

describe('forward-auth: the route is the one the proxied request would take', () => {
  it('every spelling of /admin reaches /admin’s acl (403 for alice, 200 for bob)', async () => {
    const spellings = ['/admin', '/x/../admin', '//admin', '/%61dmin', '/ADMIN/', '/admin;x', '/./admin?q=1'];
    for (const uri of spellings) {
      const a = await nginxCall(uri, cookies.alice);
      assert.equal(a.status, 403, uri);
      assert.equal(code(a), 'SG_ERR_ACCESS_DENIED', uri);
      assert.equal(a.headers['x-remote-user'], undefined, uri);
      const b = await nginxCall(uri, cookies.bob);
      assert.equal(b.status, 200, uri);
      assert.equal(b.headers['x-remote-user'], 'bob', uri);
    }
  });

  it('an absolute-form target counts with its host, and must name the forwarded host', async () => {
    const same = await nginxCall(`http://${host}/admin`, cookies.alice);
    assert.equal(same.status, 403);
    assert.equal(code(same), 'SG_ERR_ACCESS_DENIED');
    const other = await nginxCall('http://app.example.test/x', cookies.alice);
    assert.equal(other.status, 403);
    assert.equal(code(other), 'SG_ERR_FORWARD_AUTH_TARGET');
  });

  it('targets the gateway refuses when proxying are refused here too (403 for nginx)', async () => {
    const refused = [
      '/..;/admin',
      '/a\\b',
      '/a%00b',
      '/admin%2Fx',
      '/a%zz',
      '/sg/logon',
      '/x/../sg/auth',
      'javascript:alert(1)',
      '/app with space',
      '/\u00e9',
    ];
    for (const uri of refused) {
      const a = await call('/sg/auth', [
        ['X-Original-URI', uri],
        ['X-Forwarded-Host', host],
        ['Cookie', cookies.bob!],
      ]);
      assert.equal(a.status, 403, uri);
      assert.equal(code(a), 'SG_ERR_FORWARD_AUTH_TARGET', uri);
    }
    // CR/LF: a folded or split header never becomes a second target (Node's parser refuses it).
    for (const smuggled of [
      '/admin\r\n /app',
      '/admin\rX-Original-URI: /app',
      '/admin\nX-Forwarded-Uri: /app',
    ]) {
      const r = await rawRequest(
        port,
        `GET /sg/auth HTTP/1.1\r\nHost: ${host}\r\nX-Forwarded-Host: ${host}\r\nCookie: ${cookies.alice}\r\n` +
          `X-Original-URI: ${smuggled}\r\nConnection: close\r\n\r\n`,
      );
      assert.notEqual(r.status, 200, JSON.stringify(smuggled));
      assert.ok(r.status === 400 || r.status === 403, `${JSON.stringify(smuggled)}: ${r.status}`);
    }
    // A route that allows encoded slashes takes them.
    assert.equal((await nginxCall('/files/a%2Fb', cookies.bob)).status, 200);
  });

  it('a host with no route of its own takes the catch-all route; a route’s host is its own', async () => {
    const a = await call('/sg/auth', [
      ['X-Forwarded-Uri', '/x'],
      ['X-Forwarded-Host', 'app.example.test'],
      ['Cookie', cookies.alice!],
    ]);
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-remote-user'], 'alice');
  });
});

describe('forward-auth: answers', () => {
  it('an allowed session: 200, the identity headers, and the idle timer touched', async () => {
    const before = (await fx.gw.engine.list()).sessions.find(
      (s) => s.user === 'alice' && s.state === 'allow',
    );
    fx.clock.advance(120_000);
    const a = await nginxCall('/app/page?x=1', cookies.alice);
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-remote-user'], 'alice');
    assert.equal(a.headers['x-remote-groups'], undefined); // alice has none: no header
    assert.equal(a.headers['set-cookie'], undefined);
    const later = (await fx.gw.engine.get(before!.id))!;
    assert.ok(later.lastAccessAt > before!.lastAccessAt, 'touched');
    const b = await nginxCall('/app', cookies.bob);
    assert.equal(b.headers['x-remote-groups'], 'ops');
  });

  it('a client’s own identity header is not echoed back as the gateway’s', async () => {
    const a = await nginxCall('/app', '', [['X-Remote-User', 'bob']]);
    assert.equal(a.status, 401);
    assert.equal(a.headers['x-remote-user'], undefined);
  });

  it('no session: 401 with the logon URL (nginx); the redirect for browsers (Traefik, Caddy)', async () => {
    const rd = `/sg/auth/logon?rd=${encodeURIComponent(`http://${host}/app/page?x=1&y=2`)}`;
    const a = await nginxCall('/app/page?x=1&y=2');
    assert.equal(a.status, 401);
    assert.equal(code(a), 'SG_ERR_LOGON_REQUIRED');
    assert.equal(a.headers['x-sessiongate-logon'], rd);
    const traefik = [
      ['X-Forwarded-Method', 'GET'],
      ['X-Forwarded-Uri', '/app/page?x=1&y=2'],
      ['X-Forwarded-Host', host],
      ['X-Forwarded-Proto', 'http'],
    ] as [string, string][];
    const b = await call('/sg/forward-auth', [...traefik, ['Accept', 'text/html']]);
    assert.equal(b.status, 302);
    assert.equal(b.headers.location, rd);
    const api = await call('/sg/forward-auth', [...traefik, ['Accept', 'application/json']]);
    assert.equal(api.status, 401);
    // An unknown or ended session is no session.
    const gone = await nginxCall('/app', 'MRHSession=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    assert.equal(gone.status, 401);
  });

  it('HTTPS forwarded by the proxy is in the logon URL', async () => {
    const b = await call('/sg/auth', [
      ['X-Original-URI', '/app'],
      ['X-Forwarded-Host', host],
      ['X-Forwarded-Proto', 'https'],
    ]);
    assert.equal(
      b.headers['x-sessiongate-logon'],
      `/sg/auth/logon?rd=${encodeURIComponent(`https://${host}/app`)}`,
    );
  });
});

describe('forward-auth: the logon round trip never redirects off the gateway’s applications', () => {
  it('attack: a return URL on another host, or not http(s), is refused with 400', async () => {
    const b = new Browser(fx.gw.url);
    const evil = [
      'https://evil.example/',
      '//evil.example/',
      '/\\evil.example',
      'javascript:alert(1)',
      `http://evil.example@${host}/`,
      `http://${host}.evil.example/`,
      `http://${host}\\@evil.example/`,
      `http://${host}/sg/logout`,
      `http://${host}/x\r\nSet-Cookie: a=b`,
      '',
    ];
    for (const rd of evil) {
      const res = await b.fetch(`/sg/auth/logon?rd=${encodeURIComponent(rd)}`);
      assert.equal(res.status, 400, rd);
      assert.equal(res.headers.get('location'), null, rd);
      await res.arrayBuffer();
    }
    assert.equal(b.jar.size, 0, 'no session started');
  });

  it('same origin: logon form, then back to the page asked for', async () => {
    const b = new Browser(fx.gw.url);
    const start = await b.fetch(
      `/sg/auth/logon?rd=${encodeURIComponent(`http://${host}/app/x/../page?q=1`)}`,
    );
    assert.equal(start.status, 200);
    assert.match(await start.text(), /action="\/sg\/logon"/);
    // The logon page's own icon, sent to log on too, does not move the landing URI; a page does.
    const icon = `/sg/auth/logon?rd=${encodeURIComponent(`http://${host}/favicon.ico`)}`;
    const jar: [string, string] = ['Cookie', `MRHSession=${b.jar.get('MRHSession')}`];
    // (node:http: fetch would send its own Sec-Fetch-Mode.)
    const iconAnswer = await call(icon, [jar, ['Sec-Fetch-Mode', 'no-cors'], ['Sec-Fetch-Dest', 'image']]);
    assert.equal(iconAnswer.status, 200);
    const done = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(done.status, 302);
    assert.equal(done.headers.get('location'), '/app/page?q=1');
    const cookie = `MRHSession=${b.jar.get('MRHSession')}`;
    const a = await nginxCall('/app/page?q=1', cookie);
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-remote-user'], 'alice');
    // Already logged on: straight back.
    const again = await b.fetch(`/sg/auth/logon?rd=${encodeURIComponent(`http://${host}/other`)}`);
    assert.equal(again.status, 302);
    assert.equal(again.headers.get('location'), '/other');
  });

  it('a page opened while a logon is in progress is where the logon lands', async () => {
    const b = new Browser(fx.gw.url);
    await (await b.fetch(`/sg/auth/logon?rd=${encodeURIComponent(`http://${host}/first`)}`)).arrayBuffer();
    const other = `/sg/auth/logon?rd=${encodeURIComponent(`http://${host}/second?z=1`)}`;
    const cookie = `MRHSession=${b.jar.get('MRHSession')}`;
    // (node:http: fetch would send its own Sec-Fetch-Mode.)
    const opened = await call(other, [
      ['Cookie', cookie],
      ['Sec-Fetch-Mode', 'navigate'],
      ['Accept', 'text/html'],
    ]);
    assert.equal(opened.status, 200);
    const done = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(done.headers.get('location'), '/second?z=1');
  });

  it('a configured route’s host: back to that absolute URL after logon', async () => {
    const b = new Browser(fx.gw.url);
    const url = 'https://app.example.test/dash?x=1';
    const start = await b.fetch(`/sg/auth/logon?rd=${encodeURIComponent(url)}`);
    assert.equal(start.status, 200);
    await start.arrayBuffer();
    const done = await b.form('/sg/logon', { username: 'bob', password: 'builder' });
    assert.equal(done.status, 302);
    assert.equal(done.headers.get('location'), url);
  });

  it('landingLocation: same-origin paths, the browser’s host, a route’s host; else /', () => {
    const routes = [{ host: 'app.example.test' }, { host: '*' }, { host: '*.corp.test' }] as ActiveRoute[];
    assert.equal(landingLocation('/a?b', 'gw.example', routes), '/a?b');
    assert.equal(landingLocation('//evil.example/', 'gw.example', routes), '/');
    assert.equal(landingLocation('http://gw.example/x', 'gw.example', routes), 'http://gw.example/x');
    assert.equal(
      landingLocation('https://APP.example.test/', 'gw.example', routes),
      'https://APP.example.test/',
    );
    assert.equal(landingLocation('https://evil.example/', 'gw.example', routes), '/');
    assert.equal(landingLocation('https://app.example.test.evil.example/', 'gw.example', routes), '/');
    assert.equal(landingLocation('https://x.corp.test/', 'gw.example', routes), 'https://x.corp.test/');
    assert.equal(landingLocation('https://evilcorp.test/', 'gw.example', routes), '/');
    assert.equal(landingLocation('ftp://gw.example/', 'gw.example', routes), '/');
    assert.equal(landingLocation('https://gw.example/\n', 'gw.example', routes), '/');
  });
});
