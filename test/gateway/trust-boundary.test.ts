import assert from 'node:assert/strict';
import { get as httpsGet } from 'node:https';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { rawRequest } from '../support/raw-http.js';
import { basic, Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

// The attacks of the trust boundary, sent over raw sockets: every decision (route, acl,
// `/sg/`) is made on the one normalized target that is forwarded.

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [ logon, { authenticate: users }, allow ]
  second:
    cookie: { name: SecondSession }
    policy: [ logon, { authenticate: users }, allow ]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /admin }, upstream: \${UPSTREAM}, acl: { users: [bob] } }
  - { match: { path: /files }, upstream: \${UPSTREAM}, allow_encoded_slashes: true }
  - { match: { path: /other }, upstream: \${UPSTREAM}, profile: second }
`;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let port: number;
const cookies: Record<string, string> = {};

async function cookieOf(user: string, password: string, path = '/app', name = 'MRHSession'): Promise<string> {
  const res = await fetch(fx.gw.url + path, { headers: { authorization: basic(user, password) } });
  assert.equal(res.status, 200);
  // The last one: the token after rotation (the first names the pre-logon session).
  const set = res.headers.getSetCookie().findLast((c) => c.startsWith(`${name}=`)) ?? '';
  return set.split(';')[0] ?? '';
}

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  port = Number(new URL(fx.gw.url).port);
  cookies.alice = await cookieOf('alice', 'wonderland');
  cookies.bob = await cookieOf('bob', 'builder');
});
after(async () => {
  await fx.close();
  await upstream.close();
});

const get = (target: string, cookie: string, extra = '') =>
  rawRequest(
    port,
    `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${cookie}\r\n${extra}Connection: close\r\n\r\n`,
  );

/** The paths the upstream received during `fn`. */
async function upstreamPaths(fn: () => Promise<unknown>): Promise<string[]> {
  const before = upstream.seen.length;
  await fn();
  return upstream.seen.slice(before).map((s) => s.url);
}

describe('the route acl holds for every spelling of a path', () => {
  const attacks: [string, number][] = [
    [`http://127.0.0.1:PORT/admin/secret`, 403], // absolute-form (RFC 9112 §3.2.2)
    ['/x/../admin/secret', 403],
    ['/x/%2e%2e/admin/secret', 403],
    ['/%61dmin/secret', 403],
    ['//admin/secret', 403],
    ['/./admin/secret', 403],
    ['/ADMIN/secret', 403],
    ['/Admin;jsessionid=1/secret', 403],
    ['/admin%2fsecret', 400],
    ['/admin%5csecret', 400],
    ['/admin\\secret', 400],
    ['/x/..;/admin/secret', 400],
    ['/admin/%00', 400],
    ['/adm%zzin', 400],
  ];
  for (const [target, status] of attacks) {
    it(`${target} from a user outside the acl: ${status}, and the upstream sees no /admin`, async () => {
      let answer = 0;
      const seen = await upstreamPaths(async () => {
        answer = (await get(target.replace('PORT', String(port)), cookies.alice!)).status;
      });
      assert.equal(answer, status);
      assert.deepEqual(seen, []);
    });
  }

  it('forwards exactly the normalized target that was decided on', async () => {
    const seen = await upstreamPaths(async () => {
      assert.equal((await get('/x/../%61dmin//secret?q=%2e%2e', cookies.bob!)).status, 200);
      assert.equal((await get(`http://127.0.0.1:${port}/admin/a/./b?x`, cookies.bob!)).status, 200);
      assert.equal((await get('/app/%7Euser/%c3%a9', cookies.alice!)).status, 200);
    });
    assert.deepEqual(seen, ['/admin/secret?q=%2e%2e', '/admin/a/b?x', '/app/~user/%C3%A9']);
  });

  it('an absolute-form authority replaces Host', async () => {
    const before = upstream.seen.length;
    const r = await get(`http://127.0.0.1:${port}/app/x`, cookies.alice!);
    assert.equal(r.status, 200);
    assert.equal(upstream.seen[before]?.url, '/app/x');
  });

  it('a route that opts in takes an encoded slash, forwarded still encoded', async () => {
    const seen = await upstreamPaths(async () => {
      assert.equal((await get('/files/a%2fb', cookies.alice!)).status, 200);
    });
    assert.deepEqual(seen, ['/files/a%2Fb']);
  });

  it('/sg/ is decided on the normalized path too', async () => {
    const r = await get('/app/../sg/static/sg.css', cookies.alice!);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')?.[0] ?? '', /text\/css/);
    const seen = await upstreamPaths(() => get('/sg/../admin/x', cookies.alice!));
    assert.deepEqual(seen, []);
  });
});

describe('ambiguous requests are refused before any decision', () => {
  it('two Host headers: 400 and the connection closed', async () => {
    const seen = await upstreamPaths(async () => {
      const r = await get('/app', cookies.alice!, 'Host: evil.example\r\n');
      assert.equal(r.status, 400);
      assert.equal(r.closed, true);
    });
    assert.deepEqual(seen, []);
  });

  it('Transfer-Encoding on HTTP/1.0, and anything but chunked: 400', async () => {
    const body = '5\r\nhello\r\n0\r\n\r\n';
    for (const head of [
      `POST /app HTTP/1.0\r\nHost: x\r\nCookie: ${cookies.alice}\r\nTransfer-Encoding: chunked\r\n`,
      `POST /app HTTP/1.1\r\nHost: x\r\nCookie: ${cookies.alice}\r\nTransfer-Encoding: gzip, chunked\r\n`,
    ]) {
      const seen = await upstreamPaths(async () => {
        const r = await rawRequest(port, `${head}Connection: close\r\n\r\n${body}`);
        assert.equal(r.status, 400, head);
      });
      assert.deepEqual(seen, []);
    }
  });
});

describe('redirects stay on this site', () => {
  it('the landing URI after logon is a same-origin path, whatever the first request said', async () => {
    for (const [first, landing] of [
      ['//evil.example/', '/evil.example/'],
      ['/\\evil.example/', '/evil.example/'], // fetch sends //evil.example/, as Chromium does
      ['/%5Cevil.example/', null],
    ] as const) {
      const b = new Browser(fx.gw.url);
      const r = await b.fetch(first);
      if (landing === null) {
        assert.equal(r.status, 400, first);
        continue;
      }
      assert.equal(r.status, 200, first);
      const ok = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
      assert.equal(ok.status, 302);
      assert.equal(ok.headers.get('location'), landing);
      // GET /sg/logon after the logon sends the browser back to the same place.
      const again = await b.fetch('/sg/logon');
      assert.equal(again.headers.get('location'), landing);
    }
  });
});

describe('logout ends every session whose cookie it clears', () => {
  it('a second profile session on the same host is closed too', async () => {
    const first = await cookieOf('alice', 'wonderland', '/app');
    const second = await cookieOf('alice', 'wonderland', '/other/x', 'SecondSession');
    const res = await fetch(`${fx.gw.url}/sg/logout`, {
      method: 'POST',
      headers: { cookie: `${first}; ${second}`, origin: fx.gw.url },
    });
    assert.equal(res.status, 204);
    for (const [path, cookie] of [
      ['/app', first],
      ['/other/x', second],
    ] as const) {
      const after = await fetch(fx.gw.url + path, { headers: { cookie } });
      assert.equal(after.status, 401, `${path}: the session is gone`);
    }
  });
});

describe("the gateway's own pages", () => {
  it('carry CSP, frame-ancestors, nosniff and no-referrer', async () => {
    for (const path of ['/app', '/sg/static/sg.css', '/sg/nothing']) {
      const res = await fetch(fx.gw.url + path, { headers: { accept: 'text/html' } });
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.match(csp, /default-src 'none'/, path);
      assert.doesNotMatch(csp, /script-src/, path);
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
      assert.equal(res.headers.get('strict-transport-security'), null, 'no HSTS on plain http');
    }
  });
});

describe('Strict-Transport-Security', () => {
  const fixtures = fileURLToPath(new URL('./proxy/fixtures/', import.meta.url));
  const tlsConfig = (hsts: string) =>
    CONFIG.replace(
      'store: memory',
      `store: memory\nlisten: { tls: { cert: ${fixtures}upstream-cert.pem, key: ${fixtures}upstream-key.pem }${hsts} }`,
    );
  const headOf = (url: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      httpsGet(`${url}/app`, { rejectUnauthorized: false, headers: { accept: 'text/html' } }, (res) => {
        res.resume();
        resolve(res.headers);
      }).on('error', reject);
    });

  it('is sent on a TLS listener, as configured, and can be turned off', async () => {
    for (const [hsts, expected] of [
      ['', 'max-age=31536000'],
      [', hsts: { max_age: 600, include_subdomains: true }', 'max-age=600; includeSubDomains'],
      [', hsts: false', undefined],
    ] as const) {
      const tls = await startTestGateway(tlsConfig(hsts), { UPSTREAM: upstream.url });
      try {
        const headers = await headOf(tls.gw.url);
        assert.equal(headers['strict-transport-security'], expected, hsts);
        assert.equal(headers['x-frame-options'], 'DENY');
      } finally {
        await tls.close();
      }
    }
  });
});
