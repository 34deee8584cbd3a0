import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeCredentials } from '../../src/plugins/builtin/credentials-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { basic, startTestGateway, type GatewayFixture } from './harness.js';
import { RawConnection } from './raw-connection.js';

// A session that ends while its proxied answer goes out (a logout or admin kill racing the
// request) is a normal end: the answer is delivered, the gateway's bookkeeping after it
// (credential injection records the working password, authentication_completed) finds the
// session gone without an error line, and the kept-alive connection serves the next request.

const PASSWORD = 'pw-Charlie-5519';
let app: Server;
let fx: GatewayFixture;

before(async () => {
  app = createServer((req, res) => {
    const ok = !req.url?.startsWith('/vault') || req.headers.authorization === basic('svc-app', PASSWORD);
    res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain' });
    res.end(ok ? 'welcome' : 'no');
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  fx = await startTestGateway(
    `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - { name: vault, runtime: builtin, type: file-credentials, config: { credentials_file: ./creds.json } }
profiles:
  default:
    policy: [ logon, { authenticate: users }, allow ]
routes:
  - { match: { path: / }, upstream: "\${APP}" }
  - match: { path: /vault }
    upstream: "\${APP}"
    credentials: { plugin: vault, account: svc-app, inject: basic }
    rules: [ ${join(import.meta.dirname, 'fixtures', 'end-at-response.ts')} ]
`,
    { APP: appUrl },
    (dir) => {
      const keyring = Keyring.loadOrCreate(join(dir, 'keyring.json'));
      writeCredentials(
        join(dir, 'creds.json'),
        keyring,
        new Map([['svc-app@127.0.0.1', { passwords: [PASSWORD], private_keys: [] }]]),
      );
    },
  );
});
after(async () => {
  await fx.close();
  await new Promise<void>((r) => app.close(() => r()));
});

describe('a session ended while its proxied answer goes out', () => {
  it('the answer arrives, no error is logged, the connection serves the next request', async () => {
    const port = Number(new URL(fx.gw.url).port);
    const logon = await fetch(`${fx.gw.url}/app`, {
      headers: { accept: 'application/json', authorization: basic('alice', 'wonderland') },
    });
    assert.equal(logon.status, 200);
    await logon.arrayBuffer();
    const cookie = logon.headers
      .getSetCookie()
      .findLast((c) => c.startsWith('MRHSession='))!
      .split(';')[0]!;
    const c = await RawConnection.open(port);
    try {
      const request = `GET /vault/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: application/json\r\nCookie: ${cookie}\r\n\r\n`;
      await c.write(request);
      const first = await c.read(3000);
      assert.equal(first.kind === 'response' && first.status, 200);
      assert.equal(first.kind === 'response' && first.body.toString(), 'welcome');
      // The session is gone now: the next request on the connection is asked to log on.
      await c.write(request);
      const next = await c.read(3000);
      assert.equal(next.kind === 'response' ? next.status : next.kind, 401);
    } finally {
      c.close();
    }
    const errors = fx.logs.lines.filter((l) => l.level === 'error');
    assert.deepEqual(
      errors.map((l) => `${l.message} ${JSON.stringify(l.fields)}`),
      [],
    );
  });
});
