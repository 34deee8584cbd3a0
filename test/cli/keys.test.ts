import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/session/keyring.js';
import { runCli, tempDir } from './helpers.js';

describe('sessiongate keys', () => {
  it('lists, rotates and removes signing keys without printing key material', async () => {
    const dir = tempDir();
    const file = join(dir, 'keyring.json');
    const listed = await runCli(['keys', 'list', '--json', '--key-file', file], dir);
    assert.equal(listed.code, 0);
    const [first, ...others] = JSON.parse(listed.stdout) as { id: string; active: boolean }[];
    assert.equal(others.length, 0);
    assert.equal(first?.active, true);
    assert.equal(statSync(file).mode & 0o777, 0o600);

    const rotated = await runCli(['keys', 'rotate-signing', '--key-file', file], dir);
    assert.equal(rotated.code, 0);
    const newId = rotated.stdout.trim();
    const ring = Keyring.loadOrCreate(file);
    assert.equal(ring.signing.active?.id, newId);
    assert.deepEqual(
      ring.signing.keys.map((k) => k.id),
      [first!.id, newId],
      'the old key stays published',
    );

    const table = await runCli(['keys', 'list', '--key-file', file], dir);
    assert.match(table.stdout, new RegExp(`${newId}\\s+ES256\\s+\\S+\\s+yes`));
    const d = (JSON.parse(readFileSync(file, 'utf8')) as { signing: { keys: { jwk: { d: string } }[] } })
      .signing.keys[0]!.jwk.d;
    assert.ok(!table.stdout.includes(d) && !listed.stdout.includes(d), 'a private key was printed');

    const refused = await runCli(['keys', 'remove-signing', newId, '--key-file', file], dir);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /active signing key/);
    const removed = await runCli(['keys', 'remove-signing', first!.id, '--key-file', file], dir);
    assert.equal(removed.code, 0);
    assert.deepEqual(
      Keyring.loadOrCreate(file).signing.keys.map((k) => k.id),
      [newId],
    );
  });

  it('has help and refuses unknown arguments', async () => {
    const dir = tempDir();
    const help = await runCli(['keys', '--help'], dir);
    assert.match(help.stdout, /keys rotate-signing/);
    const bad = await runCli(['keys', 'remove-signing'], dir);
    assert.equal(bad.code, 2);
  });
});
