import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuditLog, auditLine } from '../../src/admin/audit.js';
import { prepareAdmin, type AdminSide } from '../../src/cli/serve-admin.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { Browser } from '../gateway/harness.js';
import { recordingLogger } from '../plugins/helpers.js';
import type { RunningAdmin } from '../../src/admin/server.js';

const CONFIG = `
store: memory
keys: ./keyring.json
admin: { port: 0, token_file: ./admin.token }
audit: { file: ./logs/audit.log }
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    failure_delay_ms: { min: 0, max: 0 }
    policy: [ logon, { authenticate: users }, allow ]
routes:
  - { match: { path: / }, upstream: demo }
`;

let dir: string;
let running: RunningGateway;
let side: AdminSide;
let admin: RunningAdmin;
let closeAll: () => Promise<void>;
let token: string;

const api = (method: string, path: string, body?: unknown) =>
  fetch(admin.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });

const auditLines = () =>
  readFileSync(join(dir, 'logs/audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sg-observe-'));
  writeFileSync(
    join(dir, 'users.yaml'),
    `users:\n  alice:\n    password: ${await hashPassword('wonderland', { N: 1024, r: 8, p: 1 })}\n`,
  );
  const loaded = parseConfig(CONFIG, 'test.yaml', dir);
  const logger = recordingLogger();
  side = prepareAdmin(loaded, logger, { processMetrics: false });
  running = await startGateway(loaded, { logger, port: 0, ...side.gatewayOptions });
  const attached = await side.attach(running, true, dir);
  admin = attached.admin!;
  closeAll = attached.close;
  assert.match(
    attached.banner ?? '',
    /^admin API on http:\/\/127\.0\.0\.1:\d+ \(token in \.\/admin\.token\)$/,
  );
  token = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
});
after(async () => {
  await closeAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('a scripted session: audit lines and metrics', () => {
  it('records starts, policy results, admin changes, kills and closes; metrics count them', async () => {
    assert.equal(statSync(join(dir, 'admin.token')).mode & 0o777, 0o600, 'token file is 0600');
    const b = new Browser(running.url);
    await b.fetch('/app');
    const logon = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(logon.status, 302);
    assert.equal((await b.fetch('/app')).status, 200);
    const aliceId = running.engine.sid(b.jar.get('MRHSession')!);

    const created = await api('POST', '/api/v1/sessions', { user: 'bob', client_ip: '192.0.2.9' });
    assert.equal(created.status, 201);
    const bob = (await created.json()) as { id: string; token: string };
    const put = await api('PUT', `/api/v1/sessions/${bob.id}/variables/session.custom.pin`, {
      value: 'pin-9876',
      secure: true,
    });
    assert.equal(put.status, 204);
    assert.equal((await api('DELETE', `/api/v1/sessions/${bob.id}`)).status, 204);
    assert.deepEqual(await (await api('DELETE', '/api/v1/sessions?user=alice')).json(), { closed: 1 });
    assert.equal((await b.fetch('/app')).status, 200, 'a new logon page: the old session is gone');
    assert.match(await (await b.fetch('/app')).text(), /<form/);
    await running.engine.dispatch();

    const lines = auditLines();
    const of = (event: string) => lines.filter((l) => l.event === event);
    const gatewayStarts = of('session_start').filter((l) => l.origin === undefined);
    assert.ok(gatewayStarts.length >= 2, 'the logon session and the one after the kill');
    assert.equal(gatewayStarts[0]!.client_ip, '127.0.0.1');
    const policy = of('policy_result');
    assert.equal(policy.length, 1);
    assert.equal(policy[0]!.user, 'alice');
    assert.equal(policy[0]!.result, 'allowed');
    const apiStart = of('session_start').find((l) => l.origin === 'admin_api')!;
    assert.equal(apiStart.session_id, bob.id);
    assert.equal(apiStart.user, 'bob');
    assert.equal(apiStart.client_ip, '192.0.2.9');
    const set = of('variable_set');
    assert.equal(set.length, 1);
    assert.deepEqual([set[0]!.name, set[0]!.secure, set[0]!.value], ['session.custom.pin', true, undefined]);
    assert.deepEqual(
      of('session_kill')
        .map((l) => l.session_id)
        .sort(),
      [aliceId, bob.id].sort(),
    );
    const closes = of('session_close');
    assert.deepEqual(
      closes.map((l) => `${l.session_id}:${l.reason}`).sort(),
      [`${aliceId}:admin_kill`, `${bob.id}:admin_kill`].sort(),
      'exactly one close line per session',
    );
    assert.equal(closes.find((l) => l.session_id === aliceId)!.user, 'alice');
    // The logon's token rotation is on the trail, so alice's start links to her close.
    const rotations = of('session_rotate');
    assert.equal(rotations.length, 1);
    assert.equal(rotations[0]!.new_session_id, aliceId);
    assert.equal(rotations[0]!.session_id, policy[0]!.session_id);
    assert.ok(gatewayStarts.some((l) => l.session_id === rotations[0]!.session_id));
    for (const l of lines) {
      assert.match(String(l.time), /^\d{4}-\d\d-\d\dT/);
      assert.equal(l.type, 'audit');
    }
    assert.ok(!readFileSync(join(dir, 'logs/audit.log'), 'utf8').includes('pin-9876'));

    const text = await (await fetch(`${admin.url}/metrics`)).text();
    const value = (series: string) => {
      const m = new RegExp(`^${series.replace(/[{}"*/.+]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
      assert.ok(m, `${series} in /metrics`);
      return Number(m[1]);
    };
    assert.equal(value('sessiongate_sessions_created_total{origin="admin_api"}'), 1);
    assert.ok(value('sessiongate_sessions_created_total{origin="gateway"}') >= 2);
    assert.equal(value('sessiongate_sessions_closed_total{reason="admin_kill"}'), 2);
    assert.equal(value('sessiongate_policy_results_total{result="allowed"}'), 1);
    assert.equal(value('sessiongate_plugin_hook_calls_total{plugin="users",hook="authenticate"}'), 1);
    assert.ok(
      value('sessiongate_plugin_hook_duration_seconds_total{plugin="users",hook="authenticate"}') > 0,
    );
    assert.ok(value('sessiongate_http_request_duration_seconds_count{route="*/",status="200"}') >= 1);
    assert.ok(value('sessiongate_http_request_duration_seconds_count{route="/sg/",status="302"}') >= 1);
    assert.ok(value('sessiongate_store_operation_duration_seconds_count{op="validate"}') >= 1);
    assert.ok(value('sessiongate_sessions_active{state="inprogress"}') >= 1);
    assert.equal(value('sessiongate_close_backlog{subscriber="audit"}'), 0);
    assert.equal(value('sessiongate_close_pipeline_stuck'), 0);
    assert.match(text, /^# TYPE sessiongate_rule_errors_total counter$/m);
    assert.match(text, /^# TYPE sessiongate_plugin_hook_failures_total counter$/m);

    const stats = (await (await api('GET', '/api/v1/stats')).json()) as {
      closed: { by_reason: Record<string, number> };
      created: { by_origin: Record<string, number> };
      policy_results: Record<string, number>;
    };
    assert.equal(stats.closed.by_reason.admin_kill, 2);
    assert.equal(stats.created.by_origin.admin_api, 1);
    assert.equal(stats.policy_results.allowed, 1);
  });
});

describe('the audit file', () => {
  it('is reopened on SIGHUP after rotation', async () => {
    const d = mkdtempSync(join(tmpdir(), 'sg-audit-'));
    const file = join(d, 'audit.log');
    const log = new AuditLog({ file });
    try {
      log.write({ event: 'session_kill', sessionId: 'a'.repeat(32), user: 'u' });
      renameSync(file, `${file}.1`);
      log.write({ event: 'session_kill', sessionId: 'b'.repeat(32) });
      assert.ok(!existsSync(file), 'still writing to the moved file until told');
      process.kill(process.pid, 'SIGHUP');
      // The signal arrives on a later turn of the event loop; reopening creates the file.
      for (let i = 0; i < 500 && !existsSync(file); i++) await new Promise((r) => setTimeout(r, 10));
      log.write({ event: 'session_kill', sessionId: 'c'.repeat(32) });
      assert.equal(readFileSync(`${file}.1`, 'utf8').split('\n').filter(Boolean).length, 2);
      assert.match(readFileSync(file, 'utf8'), /"session_id":"c{32}"/);
      assert.equal(statSync(file).mode & 0o777, 0o640);
    } finally {
      log.close();
      rmSync(d, { recursive: true, force: true });
    }
  });

  it('never writes a token, password, value or cookie field, whoever passes one', () => {
    const line = auditLine(
      {
        event: 'variable_set',
        sessionId: 'a'.repeat(32),
        token: 'T0KEN',
        password: 'PW',
        value: 'V',
        secret: 'S',
        cookie: { c: 1 },
        name: 'session.custom.x',
        clientIp: '10.0.0.1',
      },
      Date.UTC(2026, 0, 1),
    );
    assert.deepEqual(JSON.parse(line), {
      time: '2026-01-01T00:00:00.000Z',
      type: 'audit',
      event: 'variable_set',
      session_id: 'a'.repeat(32),
      user: null,
      client_ip: '10.0.0.1',
      name: 'session.custom.x',
    });
  });
});
