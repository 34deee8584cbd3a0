import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  parseCredentialKey,
  readCredentials,
  writeCredentials,
  type Credentials,
} from '../../src/plugins/builtin/credentials-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { builtinHost, tempDir } from './builtin-helpers.js';

const PASSWORD = 'db1-root-Pa55w0rd!';
const PEM =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtestkeymaterial\n-----END OPENSSH PRIVATE KEY-----\n';

describe('credentials file', () => {
  it('seals the whole content: no password, key or account name on disk; 0600', () => {
    const dir = tempDir();
    const path = join(dir, 'credentials.json');
    const ring = Keyring.ephemeral();
    const entries: Credentials = new Map([
      ['root@db1.example.org', { passwords: [PASSWORD], private_keys: [] }],
      ['deploy@10.0.0.5', { passwords: [], private_keys: [['ssh-ed25519', PEM]] }],
    ]);
    writeCredentials(path, ring, entries);
    const text = readFileSync(path, 'utf8');
    for (const secret of [
      PASSWORD,
      'b3BlbnNzaC1rZXktdjEAAAAAtestkeymaterial',
      'root',
      'db1.example.org',
      'deploy',
    ]) {
      assert.ok(!text.includes(secret), `${secret} is on disk`);
    }
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readCredentials(path, ring), entries);
    assert.throws(() => readCredentials(path, Keyring.ephemeral()), /cannot decrypt with this key ring/);
    writeFileSync(path, '{"entries": {}}');
    assert.throws(() => readCredentials(path, ring), /not a sessiongate credentials file/);
    assert.equal(readCredentials(join(dir, 'missing.json'), ring).size, 0);
  });

  it('splits ACCOUNT@ASSET at the last @ and lower-cases the asset', () => {
    assert.deepEqual(parseCredentialKey('svc@corp@DB1.Example.org'), {
      account: 'svc@corp',
      asset: 'db1.example.org',
    });
    for (const bad of ['root', '@db1', 'root@', 'ro ot@db1', 'root@db\n1']) {
      assert.equal(parseCredentialKey(bad), undefined, bad);
    }
  });
});

describe('file-credentials plugin', () => {
  let t: Awaited<ReturnType<typeof builtinHost>>;
  const facts = {
    server_username: 'root',
    server_hostname: 'DB1.example.org',
    server_ip: '10.0.0.7',
    server_domain: 'example.org',
  };

  before(async () => {
    const dir = tempDir();
    const keyring = Keyring.ephemeral();
    writeCredentials(
      join(dir, 'credentials.json'),
      keyring,
      new Map([
        ['root@db1.example.org', { passwords: [PASSWORD], private_keys: [['ssh-rsa', PEM]] }],
        ['root@example.org', { passwords: ['domain-wide'], private_keys: [] }],
        ['adm-deploy-x@10.0.0.9', { passwords: ['deploy-pw'], private_keys: [] }],
      ]),
    );
    const config = { credentials_file: 'credentials.json' };
    t = await builtinHost(
      [
        { name: 'vault', type: 'file-credentials', config },
        { name: 'late', type: 'file-credentials', config: { ...config, check_in_trigger: 'session_ended' } },
        {
          name: 'prefixed',
          type: 'file-credentials',
          config: { ...config, account_prefix: 'adm-', account_suffix: '-x' },
        },
      ],
      { baseDir: dir, keyring },
    );
  });
  after(() => t.stop());

  const audits = (session: string) =>
    t.logger.lines
      .filter((l) => l.fields.audit === true && l.fields.sessionId === session)
      .map(
        (l) =>
          `${String(l.fields.plugin)} ${String(l.fields.action)} ${String(l.fields.account)}@${String(l.fields.asset)} ${String(l.fields.credential)}${l.fields.trigger ? ` ${String(l.fields.trigger)}` : ''}`,
      );

  it('checkout by hostname (case-insensitive), check-in at authentication_completed', async () => {
    const id = await t.session();
    assert.deepEqual(await t.host.getPasswordList('vault', id, facts), [PASSWORD]);
    assert.deepEqual(await t.host.getPrivateKeyList('vault', id, facts), [['ssh-rsa', PEM]]);
    const cookie = (await t.engine.get(id))!.cookies.vault!;
    assert.deepEqual(cookie.checked_out, [
      { account: 'root', asset: 'db1.example.org', type: 'password' },
      { account: 'root', asset: 'db1.example.org', type: 'private_key' },
    ]);
    assert.equal(await t.host.authenticationCompleted('vault', id), true);
    assert.deepEqual(audits(id), [
      'vault checkout root@db1.example.org password',
      'vault checkout root@db1.example.org private_key',
      'vault checkin root@db1.example.org password authentication_completed',
      'vault checkin root@db1.example.org private_key authentication_completed',
    ]);
    await t.end(id);
    assert.equal(audits(id).length, 4, 'nothing left to check in at session_ended');
    assert.deepEqual(await t.engine.get(id), null);
  });

  it('check_in_trigger session_ended: held until the session ends', async () => {
    const id = await t.session();
    assert.deepEqual(await t.host.getPasswordList('late', id, facts), [PASSWORD]);
    await t.host.authenticationCompleted('late', id);
    assert.deepEqual(audits(id), ['late checkout root@db1.example.org password']);
    await t.end(id);
    assert.deepEqual(audits(id), [
      'late checkout root@db1.example.org password',
      'late checkin root@db1.example.org password session_ended',
    ]);
  });

  it('target authentication never succeeded: checked in at session_ended', async () => {
    const id = await t.session();
    assert.deepEqual(await t.host.getPasswordList('vault', id, facts), [PASSWORD]);
    await t.end(id); // no authentication_completed
    assert.deepEqual(audits(id), [
      'vault checkout root@db1.example.org password',
      'vault checkin root@db1.example.org password session_ended',
    ]);
  });

  it('asset candidates in order hostname, ip, domain; prefix and suffix; none found is empty', async () => {
    const id = await t.session();
    const byDomain = { ...facts, server_hostname: 'db2.example.org' };
    assert.deepEqual(await t.host.getPasswordList('vault', id, byDomain), ['domain-wide']);
    const prefixed = { server_username: 'deploy', server_hostname: 'app9', server_ip: '10.0.0.9' };
    assert.deepEqual(await t.host.getPasswordList('prefixed', id, prefixed), ['deploy-pw']);
    assert.deepEqual(await t.host.getPasswordList('vault', id, { ...facts, server_username: 'nobody' }), []);
    assert.deepEqual(await t.host.getPrivateKeyList('vault', id, byDomain), []);
    assert.deepEqual(await t.host.getPasswordList('vault', id, { server_hostname: 'db1.example.org' }), []);
  });

  it('no secret in any log line or session state', async () => {
    const id = await t.session();
    await t.host.getPasswordList('vault', id, facts);
    await t.host.getPrivateKeyList('vault', id, facts);
    const state = JSON.stringify(await t.engine.get(id));
    await t.end(id);
    const logs = JSON.stringify(t.logger.lines);
    for (const secret of [PASSWORD, 'testkeymaterial', 'domain-wide', 'deploy-pw']) {
      assert.ok(!logs.includes(secret), `${secret} in the log`);
      assert.ok(!state.includes(secret), `${secret} in the session`);
    }
    assert.ok(
      t.logger.lines.every((l) => l.level === 'info'),
      JSON.stringify(t.logger.lines.filter((l) => l.level !== 'info')),
    );
  });
});
