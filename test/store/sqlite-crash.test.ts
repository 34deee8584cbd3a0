import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { SessionId } from '../../src/core/ids.js';
import type { ClaimedClose } from '../../src/store/contract.js';
import { SqliteStore } from '../../src/store/sqlite/store.js';
import { runFixture } from './fixtures/child.js';
import { newSession } from './fixtures/new-session.js';

/** Acknowledged operations to see before the kill: enough to land mid-load, bounded in time. */
const KILL_AFTER = 2000;

describe('sqlite store across processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-sqlite-crash-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'keeps every acknowledged write through kill -9; each close reaches each subscriber once',
    { timeout: 120_000 },
    async () => {
      const path = join(dir, 'crash.db');
      const created = new Set<string>();
      const closed = new Set<string>();
      let acknowledged = 0;
      const writer = runFixture('sqlite-writer.ts', [path], (line) => {
        const m = /^(created|closed) ([0-9a-f]{32})$/.exec(line);
        if (!m) return;
        (m[1] === 'created' ? created : closed).add(m[2]!);
        if (++acknowledged === KILL_AFTER) writer.child.kill('SIGKILL');
      });
      const end = await writer.ended;
      assert.equal(end.signal, 'SIGKILL', `the writer ended on its own (code ${end.code}): ${end.stderr}`);
      assert.ok(acknowledged >= KILL_AFTER);

      const store = SqliteStore.open(path);
      try {
        // Drain both subscribers to empty, interleaved, as two dispatchers would.
        const delivered: Record<string, ClaimedClose[]> = { a: [], b: [] };
        for (let round = 0; round < 10_000; round++) {
          let progress = false;
          for (const sub of ['a', 'b']) {
            const batch = await store.claim(sub, `${sub}-drain`, {
              now: Date.now(),
              leaseMs: 60_000,
              limit: 97,
            });
            for (const r of batch) await store.ack(sub, r.seq);
            delivered[sub]!.push(...batch);
            progress ||= batch.length > 0;
          }
          if (!progress) break;
        }

        const ids: Record<string, string[]> = {};
        for (const sub of ['a', 'b']) {
          const recs = delivered[sub]!;
          ids[sub] = recs.map((r) => r.sessionId);
          assert.equal(new Set(recs.map((r) => r.seq)).size, recs.length, `${sub}: a seq delivered twice`);
          assert.equal(new Set(ids[sub]).size, recs.length, `${sub}: a session closed twice`);
          assert.ok(recs.every((r) => r.attempt === 1 && !r.redelivered && r.reason === 'logout'));
          for (const id of closed) assert.ok(ids[sub]!.includes(id), `${sub}: no close record for ${id}`);
          // Closes committed whose acknowledgement died with the writer: the line was still in
          // its output buffer (a busy parent reads the pipe late). They are real closes of
          // sessions that are gone, never of a session acknowledged as live.
          const extra = ids[sub]!.filter((id) => !closed.has(id));
          for (const id of extra) {
            assert.equal(await store.get(id as SessionId), null, `${sub}: ${id} closed but still stored`);
          }
        }
        assert.deepEqual([...ids.a!].sort(), [...ids.b!].sort());

        // Every acknowledged create is stored, unless its close committed (with a record).
        const closedAnyhow = new Set(ids.a);
        for (const id of created) {
          const found = await store.get(id as SessionId);
          if (closed.has(id)) assert.equal(found, null, `closed session ${id} is back`);
          else assert.ok(found || closedAnyhow.has(id), `acknowledged session ${id} was lost`);
        }

        const stats = await store.stats();
        assert.deepEqual(stats.outboxPending, { a: 0, b: 0 });
        // Every session acknowledged as live is there (checked above); what else is stored
        // are creates whose acknowledgement was lost with the writer.
        const acknowledgedLive = [...created].filter((id) => !closed.has(id) && !ids.a!.includes(id));
        assert.ok(stats.sessions >= acknowledgedLive.length);
      } finally {
        await store.dispose();
      }
      // Records every subscriber acknowledged are trimmed from the file.
      const raw = new Database(path, { readonly: true });
      try {
        assert.equal(raw.prepare('SELECT COUNT(*) FROM outbox').pluck().get(), 0);
      } finally {
        raw.close();
      }
    },
  );

  it('two processes on one file see each other and write at the same time', { timeout: 60_000 }, async () => {
    const path = join(dir, 'shared.db');
    const store = SqliteStore.open(path);
    try {
      const mine = newSession({ user: 'parent' });
      await store.create(mine, {}, Date.now());
      const lines: string[] = [];
      let started!: () => void;
      const childStarted = new Promise<void>((resolve) => (started = resolve));
      const peer = runFixture('sqlite-peer.ts', [path, mine.id, '300'], (line) => {
        lines.push(line);
        if (line.startsWith('parent ')) started();
      });
      await Promise.race([childStarted, peer.ended]);
      for (let i = 0; i < 300; i++) {
        await store.create(newSession({ user: 'parent' }), {}, Date.now());
        await new Promise(setImmediate); // let the peer's output be read while both write
      }
      const end = await peer.ended;
      assert.equal(end.code, 0, end.stderr);
      assert.deepEqual(lines, ['parent seen', 'created 300']);
      assert.equal((await store.listByUser('child')).length, 300);
      assert.equal((await store.listByUser('parent')).length, 301);
      assert.equal((await store.stats()).sessions, 601);
    } finally {
      await store.dispose();
    }
  });
});
