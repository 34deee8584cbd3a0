import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { sampleSession } from '../../src/store/conformance.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';

const T0 = Date.UTC(2026, 0, 1);
const modeOf = (file: string): string => (statSync(file).mode & 0o777).toString(8);

/** Run `work` with this umask, restoring the old one after. */
async function withUmask<T>(mask: number, work: () => Promise<T>): Promise<T> {
  const old = process.umask(mask);
  try {
    return await work();
  } finally {
    process.umask(old);
  }
}

describe('sqlite store file modes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-sqlite-mode-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the database, -wal and -shm 0600 even under umask 000', async () => {
    const path = join(dir, 'new', 'sessions.db');
    const store = await withUmask(0o000, async () => {
      const s = SqliteStore.open(path);
      await s.create(sampleSession(), {}, T0); // a write: the WAL and its index exist now
      return s;
    });
    try {
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        assert.ok(existsSync(file), `${file} exists`);
        assert.equal(modeOf(file), '600', file);
      }
    } finally {
      await store.dispose();
    }
  });

  it('tightens an existing database and its side files that others could read', async () => {
    const path = join(dir, 'old.db');
    const legacy = await withUmask(0o022, async () => {
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.exec('CREATE TABLE t (x)');
      db.exec('INSERT INTO t VALUES (1)');
      return db; // kept open: its -wal and -shm stay on disk
    });
    try {
      for (const file of [path, `${path}-wal`, `${path}-shm`]) chmodSync(file, 0o644);
      const store = SqliteStore.open(path);
      await store.create(sampleSession(), {}, T0);
      for (const file of [path, `${path}-wal`, `${path}-shm`]) assert.equal(modeOf(file), '600', file);
      await store.dispose();
    } finally {
      legacy.close();
    }
  });
});
