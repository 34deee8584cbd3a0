import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { BIN } from '../cli/helpers.js';
import { basic, Browser } from '../gateway/harness.js';
import { until } from '../plugins/helpers.js';

// A full run of `sessiongate serve` (debug logging, audit to a file): logons with a known
// password, admin API calls with the token, a secure variable, kills, a page login, shutdown.
// Then every line it wrote is searched for every secret that went through it.
const PASSWORD = 'Corr3ct-Horse-Battery-Staple';
const SECURE_VALUE = 'Secure-Value-7f3a9c';

const CONFIG = `
listen: { port: 0 }
admin: { port: 0, token_file: ./var/admin.token, reveal_secure: true }
audit: { file: ./var/audit.log }
store: memory
keys: ./var/keyring.json
log: { level: debug }
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    failure_delay_ms: { min: 0, max: 0 }
    policy: [ logon, { authenticate: users }, allow ]
routes:
  - { match: { path: / }, upstream: demo }
`;

const dir = mkdtempSync(join(tmpdir(), 'sg-secrets-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('a full run leaks no secret into logs or the audit trail', () => {
  it('no session token, admin token, page cookie, password or secure value in any line', async () => {
    writeFileSync(
      join(dir, 'users.yaml'),
      `users:\n  alice:\n    password: ${await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 })}\n`,
    );
    writeFileSync(join(dir, 'sg.yaml'), CONFIG);
    const child = spawn(process.execPath, [BIN, 'serve', '--config', 'sg.yaml'], {
      cwd: dir,
      env: { ...process.env, SESSIONGATE_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => void (stdout += d));
    child.stderr.on('data', (d: Buffer) => void (stderr += d));
    const secrets = new Set<string>([PASSWORD, SECURE_VALUE]);
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await until(() => /admin API on /.test(stderr), 20_000);
      const gateway = /listening on (http:\/\/\S+)/.exec(stderr)![1]!;
      const adminUrl = /admin API on (http:\/\/\S+) \(token in \.\/var\/admin\.token\)/.exec(stderr)![1]!;
      const adminToken = readFileSync(join(dir, 'var/admin.token'), 'utf8').trim();
      secrets.add(adminToken);
      const keep = (b: Browser) => b.jar.forEach((v) => secrets.add(v));

      // Browser logon: a wrong password first, then the right one.
      const b = new Browser(gateway);
      await b.fetch('/app?x=1');
      keep(b);
      await b.form('/sg/logon', { username: 'alice', password: `${PASSWORD}-wrong` });
      secrets.add(`${PASSWORD}-wrong`);
      const ok = await b.form('/sg/logon', { username: 'alice', password: PASSWORD });
      assert.equal(ok.status, 302);
      keep(b);
      assert.equal((await b.fetch('/app')).status, 200);
      // An API client with HTTP Basic.
      const c = new Browser(gateway, 'application/json');
      const viaBasic = await c.fetch('/api', { headers: { authorization: basic('alice', PASSWORD) } });
      assert.equal(viaBasic.status, 200);
      keep(c);

      // The admin API with the token.
      const api = (method: string, path: string, body?: unknown) =>
        fetch(adminUrl + path, {
          method,
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
      const created = (await (await api('POST', '/api/v1/sessions', { user: 'svc' })).json()) as {
        id: string;
        token: string;
      };
      secrets.add(created.token);
      const path = `/api/v1/sessions/${created.id}/variables/session.custom.secret`;
      assert.equal((await api('PUT', path, { value: SECURE_VALUE, secure: true })).status, 204);
      assert.equal(
        ((await (await api('GET', `${path}?secure=1`)).json()) as { value: string }).value,
        SECURE_VALUE,
      );
      assert.equal(
        (await api('PUT', `/api/v1/sessions/${created.id}/variables/bad name`, { value: SECURE_VALUE }))
          .status,
        400,
      );
      assert.equal((await api('GET', '/api/v1/sessions?user=alice')).status, 200);
      assert.equal((await api('DELETE', `/api/v1/sessions/${created.id}`)).status, 204);
      // The web page's login, and a wrong token.
      const login = await fetch(`${adminUrl}/login`, {
        method: 'POST',
        headers: { 'x-requested-with': 'test', 'content-type': 'application/json' },
        body: JSON.stringify({ token: adminToken }),
      });
      assert.equal(login.status, 204);
      secrets.add(/sg_admin=([^;]+)/.exec(login.headers.get('set-cookie') ?? '')![1]!);
      await fetch(`${adminUrl}/api/v1/stats`, { headers: { authorization: `Bearer ${adminToken}x` } });
      assert.deepEqual(await (await api('DELETE', '/api/v1/sessions?user=alice')).json(), { closed: 2 });
      await b.fetch('/app');
      keep(b);
      await fetch(`${adminUrl}/metrics`);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);

    const audit = readFileSync(join(dir, 'var/audit.log'), 'utf8');
    const closes = audit.split('\n').filter((l) => l.includes('"session_close"'));
    assert.ok(closes.length >= 3, `close lines flushed at shutdown:\n${audit}`);
    assert.ok(stdout.split('\n').length > 10, 'the debug log has lines');
    // password, wrong password, secure value, admin token, page cookie, API session token, and
    // the gateway's cookies: before logon, after rotation, the Basic client's, after the kill.
    assert.ok(secrets.size >= 9, `searched for ${secrets.size} secrets`);
    const everything = { stdout, stderr, audit };
    for (const [where, text] of Object.entries(everything)) {
      for (const secret of secrets) {
        assert.ok(secret.length >= 16, 'only real secrets are searched');
        assert.ok(!text.includes(secret), `${where} contains a secret (${secret.slice(0, 4)}...)`);
      }
    }
  });
});
