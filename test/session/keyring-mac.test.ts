import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Keyring } from '../../src/session/keyring.js';

describe('Keyring.mac', () => {
  it('is the same for the same purpose and data on every process of the key ring, and differs otherwise', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sg-mac-'));
    try {
      const file = join(dir, 'keyring.json');
      const a = Keyring.loadOrCreate(file);
      const b = Keyring.loadOrCreate(file); // another process reading the same file
      const id = '0123456789abcdef0123456789abcdef';
      assert.equal(a.mac('csrf', id), b.mac('csrf', id));
      assert.match(a.mac('csrf', id), /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(a.mac('csrf', id), a.mac('other', id), 'one key per purpose');
      assert.notEqual(a.mac('csrf', id), a.mac('csrf', id.replace('0', '1')));
      assert.notEqual(a.mac('csrf', id), Keyring.ephemeral().mac('csrf', id), 'another key ring');
      Keyring.rotate(file);
      assert.notEqual(Keyring.loadOrCreate(file).mac('csrf', id), a.mac('csrf', id), 'a new active key');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
