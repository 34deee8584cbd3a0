import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isSessionGateError } from '../../src/core/errors.js';
import { runStoreConformance, sampleSession } from '../../src/store/conformance.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { SCHEMA_VERSION } from '../../src/store/sqlite/schema.js';
import { prepareSessionStatements } from '../../src/store/sqlite/statements.js';

const T0 = Date.UTC(2026, 0, 1);

runStoreConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-sqlite-'));
  const path = join(dir, 'sessions.db');
  const h = {
    store: SqliteStore.open(path),
    reopen: async () => {
      await h.store.dispose();
      return SqliteStore.open(path);
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
  return h;
});

describe('sqlite store specifics', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-sqlite-spec-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const freshPath = () => join(dir, `t${++n}`, 'sessions.db'); // the directory does not exist yet

  /** A second, plain connection to look at the file the store writes. */
  function peek(path: string): Database.Database {
    return new Database(path, { readonly: true });
  }

  it('opens :memory: and a file in a directory it creates, with WAL and the schema version', async () => {
    const mem = SqliteStore.open(':memory:');
    await mem.create(sampleSession(), {}, T0);
    assert.equal((await mem.stats()).sessions, 1);
    assert.equal(mem.kind, 'sqlite');
    assert.deepEqual(mem.capabilities, { durable: true, shared: true });
    await mem.dispose();

    const path = freshPath();
    const store = SqliteStore.open(path, { synchronous: 'full', busyTimeoutMs: 1234 });
    const db = (store as unknown as { db: Database.Database }).db;
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('synchronous', { simple: true }), 2);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 1234);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    await store.dispose();
    const again = SqliteStore.open(path);
    const db2 = (again as unknown as { db: Database.Database }).db;
    assert.equal(db2.pragma('synchronous', { simple: true }), 1, 'NORMAL by default');
    assert.equal(db2.pragma('busy_timeout', { simple: true }), 5000);
    await again.dispose();
  });

  it('brings a version 1 file up to date: its sessions stay, failure counters work', async () => {
    const path = freshPath();
    const first = SqliteStore.open(path);
    const kept = sampleSession();
    await first.create(kept, {}, T0);
    await first.dispose();
    const raw = new Database(path);
    raw.exec('DROP TABLE failure_counters');
    raw.pragma('user_version = 1');
    raw.close();
    const store = SqliteStore.open(path);
    try {
      assert.equal((await store.get(kept.id))?.id, kept.id);
      assert.equal((await store.countFailure('k', 1000, T0)).count, 1);
      const db = peek(path);
      assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
      db.close();
    } finally {
      await store.dispose();
    }
  });

  it('refuses a corrupt file, a directory and a newer schema with SG_ERR_STORE_UNAVAILABLE', () => {
    const garbage = join(dir, 'garbage.db');
    writeFileSync(garbage, Buffer.alloc(8192, 0x5a));
    const oneLineNaming = (p: string) => (err: unknown) => {
      assert.ok(isSessionGateError(err, 'SG_ERR_STORE_UNAVAILABLE'), String(err));
      assert.ok(err.message.includes(p) && !err.message.includes('\n'), err.message);
      return true;
    };
    assert.throws(() => SqliteStore.open(garbage), oneLineNaming(garbage));
    assert.throws(() => SqliteStore.open(dir), oneLineNaming(dir));

    const future = join(dir, 'future.db');
    const raw = new Database(future);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    assert.throws(() => SqliteStore.open(future), oneLineNaming(future));
  });

  it('every call after dispose is SG_ERR_STORE_CLOSED', async () => {
    const store = SqliteStore.open(freshPath());
    await store.dispose();
    await store.dispose(); // twice is fine
    const closed = { code: 'SG_ERR_STORE_CLOSED' };
    const id = sampleSession().id;
    await assert.rejects(store.create(sampleSession(), {}, T0), closed);
    await assert.rejects(store.get(id), closed);
    await assert.rejects(store.validate(id, T0, 1000), closed);
    await assert.rejects(store.update(id, {}, { now: T0 }), closed);
    await assert.rejects(store.close(id, 'logout', T0), closed);
    await assert.rejects(store.list({}), closed);
    await assert.rejects(store.claim('a', 'c', { now: T0, leaseMs: 1, limit: 1 }), closed);
    await assert.rejects(store.stats(), closed);
  });

  it('validate within the touch resolution does not write; past it, it writes once', async () => {
    const path = freshPath();
    const store = SqliteStore.open(path);
    const s = sampleSession({ idleTimeout: 60 });
    await store.create(s, {}, T0);
    const other = peek(path);
    const dataVersion = () => other.pragma('data_version', { simple: true });
    const before = dataVersion();
    for (let i = 0; i < 50; i++)
      assert.equal((await store.validate(s.id, T0 + i * 10, 1000)).status, 'valid');
    assert.equal(dataVersion(), before, 'no commit on the common path');
    const out = await store.validate(s.id, T0 + 1000, 1000);
    assert.equal(out.status === 'valid' && out.record.version, 2);
    assert.notEqual(dataVersion(), before);
    other.close();
    await store.dispose();
  });

  it('uses its indexes: deadlines, user, in-progress address, primary key', async () => {
    const store = SqliteStore.open(':memory:');
    const db = (store as unknown as { db: Database.Database }).db;
    const s = prepareSessionStatements(db);
    const plan = (sql: string) =>
      db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...Array.from(sql.matchAll(/\?/g), () => 1))
        .map((r) => (r as { detail: string }).detail)
        .join('; ');
    // A range search that stops at now: the sweep reads due sessions only.
    assert.match(plan(s.due.source), /^SEARCH sessions USING INDEX sessions_expires_at \(.*expires_at<\?\)$/);
    assert.match(plan(s.byUser.source), /USING INDEX sessions_user_created \(user=\?\)/);
    assert.match(plan(s.countInProgressOfIp.source), /sessions_inprogress_ip \(client_ip=\?\)/);
    assert.match(plan(s.byId.source), /USING INDEX sqlite_autoindex_sessions_1 \(id=\?\)/);
    await store.dispose();
  });

  it('trims close records every subscriber finished; a failed one is kept for inspection', async () => {
    const path = freshPath();
    const store = SqliteStore.open(path);
    await store.ensureSubscriber('a');
    await store.ensureSubscriber('b');
    for (let i = 0; i < 3; i++) {
      const s = sampleSession();
      await store.create(s, {}, T0);
      await store.close(s.id, 'logout', T0);
    }
    const outboxRows = () => {
      const db = peek(path);
      const seqs = db.prepare('SELECT seq FROM outbox ORDER BY seq').pluck().all();
      db.close();
      return seqs;
    };
    const claim = (sub: string) => store.claim(sub, 'c', { now: T0, leaseMs: 1000, limit: 10 });
    const [a1, a2, a3] = await claim('a');
    const [b1, b2, b3] = await claim('b');
    for (const r of [a1, a2, a3]) await store.ack('a', r!.seq);
    assert.deepEqual(outboxRows(), [1, 2, 3], 'b has not finished any');
    await store.ack('b', b1!.seq);
    await store.fail('b', b2!.seq, 'boom', T0);
    await store.retry('b', b3!.seq, T0 + 10);
    assert.deepEqual(outboxRows(), [2, 3]);
    // A subscriber added now starts at the first record still kept.
    await store.ensureSubscriber('late');
    assert.deepEqual(
      (await claim('late')).map((r) => r.seq),
      ['2', '3'],
    );
    const st = await store.stats();
    assert.deepEqual(st.outboxPending, { a: 0, b: 1, late: 2 });
    assert.deepEqual(st.outboxFailed, { a: 0, b: 1, late: 0 });
    await store.dispose();
  });

  it('a write that cannot get the lock in time is SG_ERR_STORE_UNAVAILABLE', async () => {
    const path = freshPath();
    const store = SqliteStore.open(path, { busyTimeoutMs: 50 });
    const holder = new Database(path);
    holder.exec('BEGIN IMMEDIATE');
    try {
      await assert.rejects(store.create(sampleSession(), {}, T0), (err: unknown) => {
        assert.ok(isSessionGateError(err, 'SG_ERR_STORE_UNAVAILABLE'), String(err));
        assert.ok(err.message.includes(path));
        return true;
      });
      assert.equal((await store.stats()).sessions, 0, 'readers are not blocked by the writer');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
    await store.create(sampleSession(), {}, T0);
    await store.dispose();
  });
});
