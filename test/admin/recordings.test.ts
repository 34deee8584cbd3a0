import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { matchApi } from '../../src/admin/api.js';
import { AuditLog } from '../../src/admin/audit.js';
import { AdminMetrics } from '../../src/admin/metrics.js';
import { OPENAPI } from '../../src/admin/openapi.js';
import { startAdmin, type RunningAdmin } from '../../src/admin/server.js';
import { recordingSource } from '../../src/cli/serve-admin.js';
import { newToken } from '../../src/core/ids.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { SessionEngine } from '../../src/session/engine.js';
import { Keyring } from '../../src/session/keyring.js';
import { accessProfile } from '../../src/session/profile.js';
import { openStore } from '../../src/store/open.js';
import type { SessionStore } from '../../src/store/contract.js';
import { startTestAdmin, TOKEN } from './helpers.js';

// The recordings come from the cli's real source over a parsed configuration: an SSH route that
// records into ./rec (relative to the config's folder), and files written as the SSH gateway names them.
const CONFIG = `
store: memory
profiles:
  ssh: { policy: [ logon, allow ] }
routes:
  - { upstream: demo }
ssh:
  routes:
    - { hosts: [ a ], profile: ssh, allow: [ { target_users: ['*'] } ], recording: { dir: ./rec } }
`;
const CAST0 = '{"version":2,"width":80,"height":24}\n[0.1,"o","hello\\r\\n"]\n';
const CAST2 = '{"version":2,"width":100,"height":30}\n[0.2,"o","$ ls\\r\\n"]\n[0.3,"o","a b c\\r\\n"]\n';
const SECRET = 'outside the recording folder';

let dir: string;
let admin: RunningAdmin;
let engine: SessionEngine;
let store: SessionStore;
const auditLines: string[] = [];
const audit = () => auditLines.map((l) => JSON.parse(l) as Record<string, unknown>);
const newSessionId = (): string => newToken().id;
const id = newSessionId();
/** Status codes seen per operation, checked against the OpenAPI document at the end. */
const seen = new Map<string, Set<number>>();

async function get(path: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) {
  const res = await fetch(admin.url + path, { headers });
  const body = Buffer.from(await res.arrayBuffer());
  const found = matchApi('GET', new URL(path, admin.url).pathname);
  if (found && 'route' in found) {
    const key = found.route.path;
    if (!seen.has(key)) seen.set(key, new Set());
    seen.get(key)!.add(res.status);
  }
  const json = res.headers.get('content-type')?.startsWith('application/json')
    ? (JSON.parse(body.toString('utf8')) as { error?: { code: string } } & Record<string, unknown>)
    : undefined;
  return { status: res.status, headers: res.headers, body, json };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sg-recordings-'));
  mkdirSync(join(dir, 'rec'));
  writeFileSync(join(dir, 'rec', `${id}-2.cast`), CAST2);
  writeFileSync(join(dir, 'rec', `${id}-0.cast`), CAST0);
  writeFileSync(join(dir, 'rec', `${newSessionId()}-1.cast`), 'another session');
  writeFileSync(join(dir, 'rec', `${id}-x.cast`), 'not a recording name');
  writeFileSync(join(dir, 'secret.cast'), SECRET);
  writeFileSync(join(dir, `${id}-1.cast`), SECRET);
  const recordings = recordingSource(parseConfig(CONFIG, 'gw.yaml', dir));
  assert.ok(recordings);
  const metrics = new AdminMetrics({ processMetrics: false });
  store = await openStore('memory');
  engine = new SessionEngine({
    store,
    keyring: Keyring.ephemeral(),
    profiles: [accessProfile('default', { inactivityTimeout: 900, maxSessionTimeout: 3600 })],
  });
  metrics.attach(store, () => []);
  admin = await startAdmin({
    engine,
    metrics,
    token: TOKEN,
    port: 0,
    audit: new AuditLog({ stdout: (line) => void auditLines.push(line) }),
    recordings,
  });
});

after(async () => {
  await admin.close(100);
  await engine.stop();
  await store.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /api/v1/sessions/{id}/recordings', () => {
  it('lists the recordings of the session in channel order, with sizes and download paths', async () => {
    const res = await get(`/api/v1/sessions/${id}/recordings`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, {
      recordings: [
        { channel: 0, bytes: Buffer.byteLength(CAST0), url: `/api/v1/sessions/${id}/recordings/0` },
        { channel: 2, bytes: Buffer.byteLength(CAST2), url: `/api/v1/sessions/${id}/recordings/2` },
      ],
    });
  });

  it('answers an empty list for a session without recordings, and for one that has ended', async () => {
    const live = await engine.create({ state: 'allow' });
    assert.deepEqual((await get(`/api/v1/sessions/${live.id}/recordings`)).json, { recordings: [] });
    await engine.close(live.id, 'admin_kill');
    assert.deepEqual((await get(`/api/v1/sessions/${live.id}/recordings`)).json, { recordings: [] });
  });

  it('refuses a malformed id, an unknown query parameter, and no token', async () => {
    const bad = await get('/api/v1/sessions/not-an-id/recordings');
    assert.equal(bad.status, 400);
    assert.equal(bad.json?.error?.code, 'SG_ERR_INVALID_SESSION_ID');
    const query = await get(`/api/v1/sessions/${id}/recordings?all=1`);
    assert.equal(query.status, 400);
    assert.equal(query.json?.error?.code, 'SG_ERR_INVALID_REQUEST');
    for (const headers of [{}, { authorization: 'Bearer wrong' }] as Record<string, string>[]) {
      const res = await get(`/api/v1/sessions/${id}/recordings`, headers);
      assert.equal(res.status, 401);
      assert.equal(res.json?.error?.code, 'SG_ERR_UNAUTHORIZED');
    }
  });
});

describe('GET /api/v1/sessions/{id}/recordings/{channel}', () => {
  it('sends the file as an asciicast attachment and writes a recording_read audit line', async () => {
    const before = audit().length;
    const res = await get(`/api/v1/sessions/${id}/recordings/2`);
    assert.equal(res.status, 200);
    assert.equal(res.body.toString('utf8'), CAST2);
    assert.equal(res.headers.get('content-type'), 'application/x-asciicast');
    assert.equal(res.headers.get('content-disposition'), `attachment; filename="${id}-2.cast"`);
    assert.equal(res.headers.get('content-length'), String(Buffer.byteLength(CAST2)));
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const lines = audit().slice(before);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.event, 'recording_read');
    assert.equal(lines[0]!.session_id, id);
    assert.equal(lines[0]!.channel, 2);
    assert.equal(lines[0]!.by, 'admin_api');
  });

  it('serves the web page its cookie, audited as the page', async () => {
    const login = await fetch(`${admin.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-requested-with': 'sessiongate-admin' },
      body: JSON.stringify({ token: TOKEN }),
    });
    assert.equal(login.status, 204);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const res = await get(`/api/v1/sessions/${id}/recordings/0`, { cookie });
    assert.equal(res.status, 200);
    assert.equal(res.body.toString('utf8'), CAST0);
    const line = audit().at(-1);
    assert.equal(line?.event, 'recording_read');
    assert.equal(line.by, 'admin_page');
    assert.equal(line.channel, 0);
  });

  it('is 404 for a channel the session has not recorded (a file outside the folder included)', async () => {
    const before = audit().length;
    for (const channel of ['1', '3', '999999999']) {
      const res = await get(`/api/v1/sessions/${id}/recordings/${channel}`);
      assert.equal(res.status, 404, channel);
      assert.equal(res.json?.error?.code, 'SG_ERR_RECORDING_NOT_FOUND');
    }
    const other = await get(`/api/v1/sessions/${newSessionId()}/recordings/0`);
    assert.equal(other.status, 404);
    assert.equal(audit().length, before, 'nothing read, nothing audited');
  });

  it('never reads outside the recordings: traversal, file names and signs are refused', async () => {
    const attempts = [
      `/api/v1/sessions/${id}/recordings/..%2F..%2Fetc%2Fpasswd`,
      `/api/v1/sessions/${id}/recordings/..%2Fsecret.cast`,
      `/api/v1/sessions/${id}/recordings/1.cast`,
      `/api/v1/sessions/${id}/recordings/-1`,
      `/api/v1/sessions/${id}/recordings/+1`,
      `/api/v1/sessions/${id}/recordings/1e3`,
      `/api/v1/sessions/${id}/recordings/0x1`,
      `/api/v1/sessions/${id}/recordings/%00`,
      `/api/v1/sessions/${id}/recordings/1234567890`,
      `/api/v1/sessions/..%2F${id}/recordings/1`,
      `/api/v1/sessions/${id.toUpperCase()}/recordings/0`,
    ];
    for (const path of attempts) {
      const res = await get(path);
      assert.equal(res.status, 400, path);
      assert.ok(!res.body.toString('utf8').includes(SECRET), path);
    }
    // Dot segments the client resolves itself leave the route: an unknown endpoint.
    for (const path of ['../../../../etc/passwd', '%2e%2e', '%2e%2e/%2e%2e/%2e%2e/etc/passwd']) {
      const dots = await get(`/api/v1/sessions/${id}/recordings/${path}`);
      assert.equal(dots.status, 404, path);
      assert.equal(dots.json?.error?.code, 'SG_ERR_UNKNOWN_ENDPOINT', path);
    }
  });

  it('is 404 when the file went away, and 401 without a token', async () => {
    const gone = newSessionId();
    writeFileSync(join(dir, 'rec', `${gone}-0.cast`), CAST0);
    assert.equal((await get(`/api/v1/sessions/${gone}/recordings/0`)).status, 200);
    unlinkSync(join(dir, 'rec', `${gone}-0.cast`));
    assert.equal((await get(`/api/v1/sessions/${gone}/recordings/0`)).status, 404);
    const res = await get(`/api/v1/sessions/${id}/recordings/0`, {});
    assert.equal(res.status, 401);
    assert.equal(res.body.includes(Buffer.from('hello')), false);
  });
});

describe('without a recording source (no SSH route records)', () => {
  it('lists nothing and finds nothing', async () => {
    const fx = await startTestAdmin();
    try {
      const list = await fx.call('GET', `/api/v1/sessions/${id}/recordings`);
      assert.equal(list.status, 200);
      assert.deepEqual(list.body, { recordings: [] });
      const one = await fx.call('GET', `/api/v1/sessions/${id}/recordings/0`);
      assert.equal(one.status, 404);
      assert.equal(one.body.error.code, 'SG_ERR_RECORDING_NOT_FOUND');
    } finally {
      await fx.close();
    }
  });

  it('is what the cli supplies for a configuration without recording folders', () => {
    const plain = CONFIG.replace(', recording: { dir: ./rec }', '');
    assert.equal(recordingSource(parseConfig(plain, 'gw.yaml', dir)), undefined);
  });
});

describe('the OpenAPI document', () => {
  it('documents every status these tests saw', () => {
    const paths = OPENAPI.paths as unknown as Record<string, { get: { responses: Record<string, unknown> } }>;
    assert.equal(seen.size, 2);
    for (const [path, statuses] of seen) {
      for (const status of statuses) {
        assert.ok(paths[path]!.get.responses[String(status)], `GET ${path} answers ${status}`);
      }
    }
  });
});
