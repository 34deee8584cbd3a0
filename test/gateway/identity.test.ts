// Identity headers over real sockets (issue 15, hole 4): what reaches the application about
// the user is what the gateway says, never what the client sent.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { parse, stringify } from 'yaml';
import { ConfigError, parseConfig } from '../../src/gateway/config/load.js';
import { headerValue } from '../../src/gateway/identity/headers.js';
import { Keyring } from '../../src/session/keyring.js';
import { Browser, basic, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const root = new URL('../../', import.meta.url).pathname;
const g = globalThis as unknown as { __identitySeen?: Record<string, string | undefined>[] };

type TestUpstream = Awaited<ReturnType<typeof testUpstream>> & { raw: string[][] };

/** A test upstream that also keeps each request's raw header list (repeats and case kept). */
async function rawUpstream(): Promise<TestUpstream> {
  const up = await testUpstream();
  const raw: string[][] = [];
  up.server.prependListener('request', (req) => raw.push(req.rawHeaders));
  return Object.assign(up, { raw });
}

/** Every value of a header in a raw header list, whatever the case of its name. */
function valuesOf(raw: readonly string[] | undefined, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; raw && i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

/** A JSON client logged on with Basic credentials (its cookie kept for the next requests). */
async function loggedOn(url: string, user = 'alice', password = user === 'alice' ? 'wonderland' : 'builder') {
  const b = new Browser(url, 'application/json');
  const first = await b.fetch('/logon-probe', { headers: { authorization: basic(user, password) } });
  assert.equal(first.status, 200);
  await first.arrayBuffer();
  return b;
}

/** A GET with a raw header list (repeats, any case, any Host), with the client's cookie. */
function rawGet(url: string, b: Browser, headers: string[]): Promise<number> {
  const { host } = new URL(url);
  const cookie = [...b.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  const all = ['Host', host, 'Accept', 'application/json', 'Cookie', cookie, ...headers];
  if (headers.some((h) => h.toLowerCase() === 'host')) all.splice(0, 2);
  return new Promise<number>((ok, fail) => {
    const req = request(url, { headers: all });
    req
      .on('response', (r) => (r.resume(), ok(r.statusCode ?? 0)))
      .on('error', fail)
      .end();
  });
}

async function get(b: Browser, path: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await b.fetch(path, { headers });
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  await res.arrayBuffer();
}

describe('the quickstart with the seed x-username.ts rule', () => {
  let up: TestUpstream;
  let fx: GatewayFixture;
  before(async () => {
    up = await rawUpstream();
    const config = parse(readFileSync(join(root, 'examples/quickstart/sessiongate.yaml'), 'utf8'));
    config.store = 'memory';
    config.keys = '${DIR}/keyring.json';
    config.plugins[0].config.users_file = '${DIR}/users.yaml';
    config.routes[0].upstream = '${UPSTREAM}';
    config.routes[0].rules = [join(root, 'examples/rules/x-username.ts')];
    fx = await startTestGateway(stringify(config), { UPSTREAM: up.url });
  });
  after(async () => {
    await fx.close();
    await up.close();
  });

  it('a client sending X-USERNAME: mallory: the application receives exactly one X-USERNAME, the user\u2019s', async () => {
    const b = await loggedOn(fx.gw.url);
    await get(b, '/whoami', { 'X-USERNAME': 'mallory' });
    assert.deepEqual(valuesOf(up.raw.at(-1), 'x-username'), ['alice']);
    assert.equal(up.seen.at(-1)?.headers['x-username'], 'alice');
  });

  it('also with the name in another case, and sent twice', async () => {
    const b = await loggedOn(fx.gw.url);
    const res = await rawGet(`${fx.gw.url}/twice`, b, ['x-UserName', 'mallory', 'X-USERNAME', 'eve']);
    assert.equal(res, 200);
    assert.deepEqual(valuesOf(up.raw.at(-1), 'x-username'), ['alice']);
  });
});

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [ logon, { authenticate: users }, allow ]
    identity_headers: { X-USERNAME: session.logon.last.username, X-Client-IP: session.user.clientip }
    identity_assertion: { lifetime: 60 }
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - match: { path: /probe }
    upstream: \${UPSTREAM}
    rules: [ ${root}test/gateway/fixtures/identity-probe.ts ]
  - match: { path: /groups }
    upstream: \${UPSTREAM}
    identity_headers: { X-Groups: session.logon.last.groups, X-Client-IP: null }
  - { match: { path: /tenant }, upstream: \${UPSTREAM}, strip_headers: [ X-Tenant ] }
  - { match: { path: /plain }, upstream: \${UPSTREAM}, identity_assertion: false }
  - { match: { host: app.example.org, path: / }, upstream: \${UPSTREAM} }
`;

describe('identity headers, the strip list and the assertion', () => {
  let up: TestUpstream;
  let fx: GatewayFixture;
  before(async () => {
    up = await rawUpstream();
    fx = await startTestGateway(CONFIG, { UPSTREAM: up.url });
  });
  after(async () => {
    await fx.close();
    await up.close();
  });

  it('identity_headers replace the client\u2019s copies; an unset variable removes the header', async () => {
    const b = await loggedOn(fx.gw.url);
    await get(b, '/a', { 'X-USERNAME': 'mallory', 'X-Client-IP': '10.6.6.6', 'X-Groups': 'admins' });
    const raw = up.raw.at(-1);
    assert.deepEqual(valuesOf(raw, 'x-username'), ['alice']);
    assert.deepEqual(valuesOf(raw, 'x-client-ip'), ['127.0.0.1']);
    assert.deepEqual(valuesOf(raw, 'x-groups'), ['admins'], 'not an identity header on this route');

    await get(b, '/groups/x', { 'X-USERNAME': 'mallory', 'X-Client-IP': '10.6.6.6', 'X-Groups': 'admins' });
    const routed = up.raw.at(-1);
    assert.deepEqual(valuesOf(routed, 'x-username'), ['alice'], "the profile's header stays");
    assert.deepEqual(valuesOf(routed, 'x-groups'), [], 'alice has no groups: the header is absent');
    assert.deepEqual(valuesOf(routed, 'x-client-ip'), ['10.6.6.6'], 'the route removed this identity header');

    const bob = await loggedOn(fx.gw.url, 'bob');
    await get(bob, '/groups/x', { 'X-Groups': 'admins' });
    assert.deepEqual(valuesOf(up.raw.at(-1), 'x-groups'), ['ops']);
  });

  it('the default list is removed before rules run; a rule cannot put a value into an identity header', async () => {
    g.__identitySeen = [];
    const b = await loggedOn(fx.gw.url);
    const forged = {
      'X-Forwarded-User': 'mallory',
      'X-Forwarded-Email': 'mallory@evil.example',
      'X-Forwarded-Groups': 'admins',
      'X-Forwarded-Preferred-Username': 'mallory',
      'X-Remote-User': 'mallory',
      'Remote-User': 'mallory',
      'X-Real-IP': '10.6.6.6',
      Forwarded: 'for=10.6.6.6;by=evil',
      'X-Sessiongate-Assertion': 'forged',
      'X-USERNAME': 'mallory',
      'X-Other': 'kept',
    };
    await get(b, '/probe/x', forged);
    assert.deepEqual(g.__identitySeen.at(-1), {
      'x-forwarded-user': undefined,
      forwarded: undefined,
      'x-real-ip': undefined,
      'x-sessiongate-assertion': undefined,
      'x-username': undefined,
      'x-other': 'kept',
    });
    const raw = up.raw.at(-1);
    for (const name of Object.keys(forged).map((n) => n.toLowerCase())) {
      if (name === 'x-other' || name === 'x-username' || name === 'x-sessiongate-assertion') continue;
      assert.deepEqual(valuesOf(raw, name), [], `${name} reached the application`);
    }
    assert.deepEqual(valuesOf(raw, 'x-other'), ['kept']);
    assert.deepEqual(valuesOf(raw, 'x-username'), ['alice'], "the gateway's value, not the rule's insert");
    assert.deepEqual(valuesOf(raw, 'x-rule-note'), ['kept'], 'other rule edits pass');
  });

  it('a route adds names to strip; other routes pass them', async () => {
    const b = await loggedOn(fx.gw.url);
    await get(b, '/tenant/x', { 'X-Tenant': 'other-tenant' });
    assert.deepEqual(valuesOf(up.raw.at(-1), 'x-tenant'), []);
    await get(b, '/elsewhere', { 'X-Tenant': 'other-tenant' });
    assert.deepEqual(valuesOf(up.raw.at(-1), 'x-tenant'), ['other-tenant']);
  });

  it('the assertion verifies against /sg/.well-known/jwks.json with the right claims, and no id or token', async () => {
    const b = await loggedOn(fx.gw.url, 'bob');
    await get(b, '/page');
    const [token, ...more] = valuesOf(up.raw.at(-1), 'x-sessiongate-assertion');
    assert.ok(token);
    assert.equal(more.length, 0);
    const jwks = createRemoteJWKSet(new URL(`${fx.gw.url}/sg/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: 'sessiongate',
      audience: '127.0.0.1',
      algorithms: ['ES256'],
      currentDate: new Date(fx.clock.now()),
    });
    const cookie = b.jar.get('MRHSession')!;
    const id = fx.gw.engine.sid(cookie);
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.sub, 'bob');
    assert.deepEqual(payload.groups, ['ops']);
    assert.equal(payload.session_hash, createHash('sha256').update(id).digest('base64url'));
    assert.equal(payload.iat, Math.floor(fx.clock.now() / 1000));
    assert.equal(payload.exp, payload.iat! + 60);
    const decoded = Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8');
    for (const secret of [id, cookie]) {
      assert.ok(
        !token.includes(secret) && !decoded.includes(secret),
        'the id or the token is in the assertion',
      );
    }
  });

  it('is cached per session and re-signed when half its lifetime has passed', async () => {
    const b = await loggedOn(fx.gw.url);
    await get(b, '/one');
    await get(b, '/two');
    const [first] = valuesOf(up.raw.at(-2), 'x-sessiongate-assertion');
    const [second] = valuesOf(up.raw.at(-1), 'x-sessiongate-assertion');
    assert.equal(second, first, 'one signing for both requests');
    fx.clock.advance(29_000);
    await get(b, '/three');
    assert.equal(valuesOf(up.raw.at(-1), 'x-sessiongate-assertion')[0], first);
    fx.clock.advance(2_000);
    await get(b, '/four');
    const [renewed] = valuesOf(up.raw.at(-1), 'x-sessiongate-assertion');
    assert.notEqual(renewed, first);
    const jwks = createRemoteJWKSet(new URL(`${fx.gw.url}/sg/.well-known/jwks.json`));
    const { payload } = await jwtVerify(renewed!, jwks, { currentDate: new Date(fx.clock.now()) });
    assert.equal(payload.iat, Math.floor(fx.clock.now() / 1000));
  });

  it('the audience is the route\u2019s host', async () => {
    const b = await loggedOn(fx.gw.url);
    assert.equal(await rawGet(`${fx.gw.url}/page`, b, ['Host', 'app.example.org']), 200);
    const [token] = valuesOf(up.raw.at(-1), 'x-sessiongate-assertion');
    const jwks = createRemoteJWKSet(new URL(`${fx.gw.url}/sg/.well-known/jwks.json`));
    const { payload } = await jwtVerify(token!, jwks, { currentDate: new Date(fx.clock.now()) });
    assert.equal(payload.aud, 'app.example.org');
  });

  it('a forged assertion from the client never reaches the application', async () => {
    const b = await loggedOn(fx.gw.url);
    const forged = 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.';
    await get(b, '/plain/x', { 'X-Sessiongate-Assertion': forged });
    assert.deepEqual(valuesOf(up.raw.at(-1), 'x-sessiongate-assertion'), [], 'route without assertion');
    await get(b, '/signed', { 'X-Sessiongate-Assertion': forged });
    const values = valuesOf(up.raw.at(-1), 'x-sessiongate-assertion');
    assert.equal(values.length, 1);
    assert.notEqual(values[0], forged);
    assert.equal(decodeProtectedHeader(values[0]!).alg, 'ES256');
  });

  it('a WebSocket upgrade gets the same: client copies gone, identity headers and assertion set', async () => {
    const upgrades: string[][] = [];
    const onUpgrade = (req: IncomingMessage, socket: Duplex) => {
      upgrades.push(req.rawHeaders);
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    };
    up.server.on('upgrade', onUpgrade);
    try {
      const b = await loggedOn(fx.gw.url);
      const { host } = new URL(fx.gw.url);
      await new Promise<void>((ok, fail) => {
        const req = request(`${fx.gw.url}/ws`, {
          headers: {
            host,
            connection: 'Upgrade',
            upgrade: 'websocket',
            'sec-websocket-version': '13',
            'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
            cookie: [...b.jar].map(([k, v]) => `${k}=${v}`).join('; '),
            'x-username': 'mallory',
            'x-forwarded-user': 'mallory',
            'x-sessiongate-assertion': 'forged',
          },
        });
        req.on('upgrade', (_res, socket) => (socket.destroy(), ok()));
        req.on('response', (res) => fail(new Error(`answered ${res.statusCode}`)));
        req.on('error', fail).end();
      });
      const raw = upgrades.at(-1);
      assert.deepEqual(valuesOf(raw, 'x-username'), ['alice']);
      assert.deepEqual(valuesOf(raw, 'x-forwarded-user'), []);
      const [token, ...more] = valuesOf(raw, 'x-sessiongate-assertion');
      assert.equal(more.length, 0);
      const jwks = createRemoteJWKSet(new URL(`${fx.gw.url}/sg/.well-known/jwks.json`));
      const { payload } = await jwtVerify(token!, jwks, { currentDate: new Date(fx.clock.now()) });
      assert.equal(payload.sub, 'alice');
    } finally {
      up.server.off('upgrade', onUpgrade);
    }
  });

  it('GET /sg/.well-known/jwks.json lists public keys only', async () => {
    const res = await fetch(`${fx.gw.url}/sg/.well-known/jwks.json`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { keys: Record<string, string>[] };
    assert.equal(body.keys.length, 1);
    assert.deepEqual(Object.keys(body.keys[0]!).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  });
});

describe('signing key rotation', () => {
  it('a new key signs from the next start on; assertions of the old key still verify', async () => {
    const up = await rawUpstream();
    const first = await startTestGateway(CONFIG, { UPSTREAM: up.url });
    let second: GatewayFixture | undefined;
    try {
      const b1 = await loggedOn(first.gw.url);
      await get(b1, '/before');
      const [old] = valuesOf(up.raw.at(-1), 'x-sessiongate-assertion');
      const oldKid = decodeProtectedHeader(old!).kid;
      second = await startTestGateway(CONFIG, { UPSTREAM: up.url }, (dir) => {
        copyFileSync(join(first.dir, 'keyring.json'), join(dir, 'keyring.json'));
        Keyring.rotateSigning(join(dir, 'keyring.json'));
      });
      const b2 = await loggedOn(second.gw.url);
      await get(b2, '/after');
      const [fresh] = valuesOf(up.raw.at(-1), 'x-sessiongate-assertion');
      assert.notEqual(decodeProtectedHeader(fresh!).kid, oldKid);
      const jwks = createRemoteJWKSet(new URL(`${second.gw.url}/sg/.well-known/jwks.json`));
      const at = { currentDate: new Date(second.clock.now()) };
      assert.equal((await jwtVerify(old!, jwks, at)).payload.sub, 'alice');
      assert.equal((await jwtVerify(fresh!, jwks, at)).payload.sub, 'alice');
    } finally {
      await second?.close();
      await first.close();
      await up.close();
    }
  });

  it('an existing key ring without signing keys gets one when a route sends assertions', async () => {
    const up = await rawUpstream();
    const fx = await startTestGateway(CONFIG, { UPSTREAM: up.url }, (dir) => {
      Keyring.loadOrCreate(join(dir, 'keyring.json'));
      const file = JSON.parse(readFileSync(join(dir, 'keyring.json'), 'utf8'));
      delete file.signing;
      writeFileSync(join(dir, 'keyring.json'), JSON.stringify(file));
    });
    try {
      const file = JSON.parse(readFileSync(join(fx.dir, 'keyring.json'), 'utf8'));
      assert.equal(file.signing.keys.length, 1);
    } finally {
      await fx.close();
      await up.close();
    }
  });
});

describe('identity configuration', () => {
  it('refuses headers the proxy manages and the session id, with the reason', () => {
    const problems = (profile: string): string => {
      const text = `profiles:\n  default:\n${profile}\nroutes: [ { upstream: "http://127.0.0.1:1" } ]\n`;
      try {
        parseConfig(text, 't.yaml', '/tmp');
        return '';
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.message;
      }
    };
    assert.match(
      problems('    identity_headers: { Host: session.logon.last.username }'),
      /managed by the proxy/,
    );
    assert.match(problems('    identity_headers: { "X Bad": session.logon.last.username }'), /header name/);
    assert.match(problems('    identity_headers: { X-Session: session.user.sessionid }'), /session id/);
    assert.match(problems('    strip_headers: [ Cookie ]'), /managed by the proxy/);
    assert.equal(
      problems(
        '    identity_headers: { X-User: session.logon.last.username }\n    strip_headers: [ X-Tenant ]',
      ),
      '',
    );
  });
});

describe('identity header values', () => {
  it('printable ASCII as it is; anything else percent-encoded, so it cannot split the header', () => {
    assert.equal(headerValue('alice smith'), 'alice smith');
    assert.equal(headerValue('José'), 'Jos%C3%A9');
    assert.equal(headerValue('a\r\nX-Evil: 1'), 'a%0D%0AX-Evil%3A%201');
    assert.equal(headerValue('\ud800'), null, 'a lone surrogate cannot be encoded: no header');
  });
});
