import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestAdmin, TOKEN, type AdminFixture } from '../admin/helpers.js';
import { runCli, tempDir } from './helpers.js';

// A session ends at the first of its idle deadline, its lifetime and (while its logon is not
// finished) its access policy timeout. Wherever a session is shown, the time left is that first
// deadline, named by the close reason it will get.

/** `2m59s` or `3m00s` for a deadline `seconds` away (a few seconds pass while the test runs). */
const about = (seconds: number) => {
  const d = (s: number) => (s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`);
  return `(?:${[0, 1, 2, 3, 4, 5].map((late) => d(seconds - late)).join('|')})`;
};

describe('the deadline that ends a session: CLI on a store', () => {
  const dir = tempDir();
  const S = ['--config', 'gw.yaml'];
  writeFileSync(
    join(dir, 'gw.yaml'),
    'store: sqlite:./s.db\nkeys: ./k.json\nprofiles:\n' +
      '  default: { inactivity_timeout: 720, max_session_timeout: 518400, policy_timeout: 180 }\n',
  );
  const create = async (...args: string[]) => {
    const r = await runCli(['session', 'create', '--json', ...args, ...S], dir);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { id: string }).id;
  };
  let logon = '';
  let allowed = '';
  let short = '';

  before(async () => {
    logon = await create('--state', 'inprogress');
    allowed = await create('--user', 'alice');
    short = await create('--user', 'bob', '--lifetime', '60');
  });

  it('list: EXPIRES_IN and BY give the first deadline and its reason', async () => {
    const r = await runCli(['session', 'list', ...S], dir);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^ID\s+STATE\s+USER\s+CLIENT_IP\s+CREATED\s+EXPIRES_IN\s+BY$/);
    const row = (id: string) => lines.find((l) => l.startsWith(id)) ?? '';
    assert.match(row(logon), new RegExp(`\\s${about(180)}\\s+policy_timeout$`));
    assert.match(row(allowed), new RegExp(`\\s${about(720)}\\s+idle_timeout$`));
    assert.match(row(short), new RegExp(`\\s${about(60)}\\s+lifetime_expired$`));
  });

  it('list --json and show name the reason beside expires_at', async () => {
    const listed = await runCli(['session', 'list', '--json', ...S], dir);
    const all = JSON.parse(listed.stdout) as Record<string, string | null>[];
    const byId = new Map(all.map((s) => [s.id, s]));
    assert.equal(byId.get(logon)?.expiry_reason, 'policy_timeout');
    assert.equal(byId.get(logon)?.expires_at, byId.get(logon)?.policy_expires_at);
    assert.equal(byId.get(allowed)?.expiry_reason, 'idle_timeout');
    assert.equal(byId.get(short)?.expiry_reason, 'lifetime_expired');
    const shown = await runCli(['session', 'show', logon, ...S], dir);
    assert.match(shown.stdout, /\nexpires_at: (\S+)\nexpiry_reason: policy_timeout\n/);
  });

  it('a session without any deadline expires never', async () => {
    const id = await create('--timeout', '0', '--lifetime', '0');
    const r = await runCli(['session', 'list', ...S], dir);
    assert.match(r.stdout, new RegExp(`^${id}\\s.*\\snever\\s+-$`, 'm'));
    const json = await runCli(['session', 'show', id, '--json', ...S], dir);
    const s = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(s.expires_at, null);
    assert.equal(s.expiry_reason, null);
  });
});

describe('the deadline that ends a session: admin API and the CLI through it', () => {
  let fx: AdminFixture;
  const env = { SESSIONGATE_ADMIN_TOKEN: TOKEN };
  before(async () => {
    fx = await startTestAdmin();
  });
  after(() => fx.close());

  it('the API gives policy_expires_at and expiry_reason; list --url shows the policy deadline', async () => {
    // The fixture's profile: idle 900 s, lifetime 3600 s, the default policy timeout 300 s.
    const { id } = await fx.engine.create({ state: 'inprogress', clientIp: '10.0.0.5' });
    const one = await fx.call('GET', `/api/v1/sessions/${id}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.expiry_reason, 'policy_timeout');
    assert.equal(one.body.policy_expires_at, one.body.expires_at);
    assert.equal(Date.parse(one.body.expires_at) - Date.parse(one.body.created_at), 300_000);
    const page = await fx.call('GET', '/api/v1/sessions');
    const listed = (page.body.sessions as Record<string, unknown>[]).find((s) => s.id === id);
    assert.equal(listed?.expiry_reason, 'policy_timeout');
    const r = await runCli(['session', 'list', '--url', fx.url], tempDir(), env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^${id}\\s.*\\s${about(300)}\\s+policy_timeout$`, 'm'));
  });
});
