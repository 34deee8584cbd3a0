import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeCredentials } from '../../src/plugins/builtin/credentials-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { basic, Browser, startTestGateway, type GatewayFixture } from './harness.js';

const FIRST = 'pw-Alpha-7731';
const SECOND = 'pw-Bravo-9042';
const root = new URL('../../', import.meta.url).pathname;

/** An application that takes only svc-app with the second password. */
let app: Server;
let appUrl: string;
const authSeen: string[] = [];
let fx: GatewayFixture;

before(async () => {
  app = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    authSeen.push(auth);
    const ok = auth === basic('svc-app', SECOND);
    res.writeHead(
      ok ? 200 : 401,
      ok ? { 'content-type': 'text/plain' } : { 'www-authenticate': 'Basic realm="app"' },
    );
    res.end(ok ? 'welcome' : 'no');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  fx = await startTestGateway(
    `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - { name: vault, runtime: builtin, type: file-credentials, config: { credentials_file: ./creds.json, check_in_trigger: session_ended } }
  - { name: broken, runtime: module, path: ${root}test/gateway/fixtures/broken-vault.ts }
profiles:
  default:
    policy: [ logon, { authenticate: users }, allow ]
routes:
  - { match: { path: / }, upstream: "\${APP}", credentials: { plugin: vault, account: svc-app, inject: basic } }
  - { match: { path: /nobody }, upstream: "\${APP}", credentials: { plugin: vault, account: nobody, inject: bearer } }
  - { match: { path: /broken }, upstream: "\${APP}", credentials: { plugin: broken, account: svc-app, inject: basic } }
`,
    { APP: appUrl },
    (dir) => {
      const keyring = Keyring.loadOrCreate(join(dir, 'keyring.json'));
      writeCredentials(
        join(dir, 'creds.json'),
        keyring,
        new Map([['svc-app@127.0.0.1', { passwords: [FIRST, SECOND], private_keys: [] }]]),
      );
    },
  );
});
after(async () => {
  await fx.close();
  await new Promise<void>((r) => app.close(() => r()));
});

describe('credential injection', () => {
  it('injects the first password, moves to the second on 401 within the request, and remembers it', async () => {
    const api = new Browser(fx.gw.url, 'application/json');
    authSeen.length = 0;
    const res = await api.fetch('/data', { headers: { authorization: basic('alice', 'wonderland') } });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'welcome');
    assert.deepEqual(authSeen, [basic('svc-app', FIRST), basic('svc-app', SECOND)]);
    authSeen.length = 0;
    assert.equal((await api.fetch('/data')).status, 200);
    assert.deepEqual(authSeen, [basic('svc-app', SECOND)], 'the working password is kept for the session');

    const id = fx.gw.engine.sid(api.jar.get('MRHSession')!);
    const s = await fx.gw.engine.get(id);
    assert.equal(s?.cookies.vault?.target_authenticated, true, 'authentication_completed ran');
    assert.equal(JSON.stringify(s?.variables).includes(FIRST), false, 'kept only as a secure variable');

    await fx.gw.engine.close(id, 'logout');
    await fx.gw.engine.dispatch();
    await fx.gw.engine.dispatch();
    const audit = fx.logs.lines.filter((l) => l.fields.audit === true && l.fields.sessionId === id);
    assert.deepEqual(
      audit.map((l) => l.fields.action),
      ['checkout', 'checkin'],
    );
    const all = JSON.stringify(fx.logs.lines);
    assert.equal(all.includes(FIRST) || all.includes(SECOND), false, 'no secret in any log line');
  });

  it('no credentials, or a failing store: a 502 page that names no secret', async () => {
    for (const [path, code] of [
      ['/nobody', 'SG_ERR_CREDENTIALS_UNAVAILABLE'],
      ['/broken', 'SG_ERR_CREDENTIALS_UNAVAILABLE'],
    ] as const) {
      const api = new Browser(fx.gw.url, 'application/json');
      const res = await api.fetch(path, { headers: { authorization: basic('alice', 'wonderland') } });
      assert.equal(res.status, 502, path);
      const body = await res.text();
      assert.equal(JSON.parse(body).error.code, code);
      assert.equal(body.includes(FIRST) || body.includes(SECOND), false);
    }
    assert.ok(fx.logs.lines.some((l) => l.fields.plugin === 'broken' && l.message === 'plugin hook failed'));
  });
});
