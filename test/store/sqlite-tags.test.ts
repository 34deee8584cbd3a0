import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { newToken } from '../../src/core/ids.js';
import { sampleSession } from '../../src/store/conformance.js';
import { SCHEMA_VERSION } from '../../src/store/sqlite/schema.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';

const T0 = Date.UTC(2026, 0, 1);

describe('sqlite store: session tags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-sqlite-tags-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const freshPath = () => join(dir, `t${++n}`, 'sessions.db');
  const rows = (path: string): number => {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare('SELECT COUNT(*) FROM session_tags').pluck().get() as number;
    } finally {
      db.close();
    }
  };

  it('brings a version 2 file to version 3: its sessions stay and can be tagged', async () => {
    const path = freshPath();
    const first = SqliteStore.open(path);
    const kept = sampleSession();
    await first.create(kept, {}, T0);
    await first.dispose();
    const raw = new Database(path);
    raw.exec('DROP TABLE session_tags');
    raw.pragma('user_version = 2');
    raw.close();
    const store = SqliteStore.open(path);
    try {
      assert.equal(SCHEMA_VERSION, 3);
      assert.equal(await store.tag(kept.id, ['oidc-sid:a:b'], T0), true);
      assert.deepEqual(await store.findByTag('oidc-sid:a:b', T0), [kept.id]);
      const db = new Database(path, { readonly: true });
      assert.equal(db.pragma('user_version', { simple: true }), 3);
      db.close();
    } finally {
      await store.dispose();
    }
  });

  it('finds a tag through its index', async () => {
    const store = SqliteStore.open(':memory:');
    const db = (store as unknown as { db: Database.Database }).db;
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT t.session_id FROM session_tags t JOIN sessions s ON s.id = t.session_id
         WHERE t.tag = ? AND (s.expires_at IS NULL OR s.expires_at > ?)`,
      )
      .all('x', 1)
      .map((r) => (r as { detail: string }).detail)
      .join('; ');
    assert.match(plan, /SEARCH t USING (COVERING )?INDEX session_tags_tag \(tag=\?\)/);
    await store.dispose();
  });

  it('deletes the rows of a session with it: close, eviction, expiry; rekey moves them', async () => {
    const path = freshPath();
    const store = SqliteStore.open(path);
    try {
      const a = sampleSession({ user: 'u', createdAt: T0 });
      const b = sampleSession({ idleTimeout: 10 });
      const c = sampleSession();
      for (const s of [a, b, c]) {
        await store.create(s, {}, T0);
        await store.tag(s.id, ['t1', 't2'], T0);
      }
      assert.equal(rows(path), 6);
      const fresh = newToken().id;
      await store.rekey(c.id, fresh, {}, { now: T0 });
      assert.equal(rows(path), 6);
      assert.ok((await store.findByTag('t1', T0)).includes(fresh));
      await store.close(fresh, 'logout', T0);
      assert.equal(rows(path), 4);
      await store.closeExpired(T0 + 10_000, 10);
      assert.equal(rows(path), 2);
      const newer = sampleSession({ user: 'u', createdAt: T0 + 1 });
      const out = await store.create(newer, { maxSessionsPerUser: 1 }, T0 + 1);
      assert.deepEqual(out.evicted, [a.id]);
      assert.equal(rows(path), 0);
    } finally {
      await store.dispose();
    }
  });
});
