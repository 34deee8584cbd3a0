import type Database from 'better-sqlite3';
import type { SessionId } from '../../core/ids.js';
import type { CloseReason, CloseRecord, SessionRecord } from '../../core/session-types.js';
import type { ClaimedClose, ClaimOptions, ReleaseOptions } from '../contract.js';

interface OutboxRow {
  seq: number;
  sessionId: SessionId;
  reason: CloseReason;
  closedAt: number;
  snapshot: string;
}

interface DueRow extends OutboxRow {
  consumer: string | null;
  attempts: number;
  redelivered: number;
}

const RECORD_COLUMNS = 'o.seq, o.session_id AS sessionId, o.reason, o.closed_at AS closedAt, o.snapshot';

/**
 * The outbox of the sqlite store, with the consumer-group semantics of the memory outbox: one
 * group per subscriber holding its last-delivered seq, and a pending list of leased records.
 * Methods run inside the caller's transaction; the store wraps each contract call in one.
 */
export class SqliteOutbox {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      append: db.prepare<[SessionId, CloseReason, number, string]>(
        'INSERT INTO outbox (session_id, reason, closed_at, snapshot) VALUES (?, ?, ?, ?)',
      ),
      lastSeq: db.prepare<[string], number>('SELECT last_seq FROM outbox_groups WHERE name = ?').pluck(),
      firstSeq: db.prepare<[], number | null>('SELECT MIN(seq) FROM outbox').pluck(),
      // The highest seq ever given out, even when its record was trimmed since.
      highestSeq: db.prepare<[], number>("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").pluck(),
      addGroup: db.prepare<[string, number]>('INSERT INTO outbox_groups (name, last_seq) VALUES (?, ?)'),
      setLastSeq: db.prepare<[number, string]>('UPDATE outbox_groups SET last_seq = ? WHERE name = ?'),
      due: db.prepare<[string, number, number], DueRow>(
        `SELECT ${RECORD_COLUMNS}, p.consumer, p.attempts, p.redelivered
         FROM outbox_pending p JOIN outbox o ON o.seq = p.seq
         WHERE p.grp = ? AND p.lease_until <= ? ORDER BY p.seq LIMIT ?`,
      ),
      lease: db.prepare<[string, number, number, string, number]>(
        `UPDATE outbox_pending SET consumer = ?, lease_until = ?, attempts = attempts + 1, redelivered = ?
         WHERE grp = ? AND seq = ?`,
      ),
      fresh: db.prepare<[number, number], OutboxRow>(
        `SELECT ${RECORD_COLUMNS} FROM outbox o WHERE o.seq > ? ORDER BY o.seq LIMIT ?`,
      ),
      addPending: db.prepare<[string, number, string, number]>(
        `INSERT INTO outbox_pending (grp, seq, consumer, lease_until, attempts, redelivered)
         VALUES (?, ?, ?, ?, 1, 0)`,
      ),
      dropPending: db.prepare<[string, number]>('DELETE FROM outbox_pending WHERE grp = ? AND seq = ?'),
      release: db.prepare<[number, string, number]>(
        'UPDATE outbox_pending SET consumer = NULL, lease_until = ? WHERE grp = ? AND seq = ?',
      ),
      renew: db.prepare<[number, string, number, string]>(
        'UPDATE outbox_pending SET lease_until = ? WHERE grp = ? AND seq = ? AND consumer = ?',
      ),
      // Undo a claim that was never worked on, or keep its attempt and flag it when it was cut off.
      releaseUnstarted: db.prepare<[number, string, number, string]>(
        `UPDATE outbox_pending SET consumer = NULL, lease_until = ?, attempts = MAX(0, attempts - 1)
         WHERE grp = ? AND seq = ? AND consumer = ?`,
      ),
      releaseInterrupted: db.prepare<[number, string, number, string]>(
        `UPDATE outbox_pending SET consumer = NULL, lease_until = ?, redelivered = 1
         WHERE grp = ? AND seq = ? AND consumer = ?`,
      ),
      // The oldest unfinished record of each group: the first pending one or the first not yet delivered.
      oldest: db.prepare<[], { name: string; closedAt: number | null }>(
        `SELECT g.name, (SELECT o.closed_at FROM outbox o WHERE o.seq = MIN(
             COALESCE((SELECT MIN(p.seq) FROM outbox_pending p WHERE p.grp = g.name), 9e18),
             COALESCE((SELECT MIN(o2.seq) FROM outbox o2 WHERE o2.seq > g.last_seq), 9e18))) AS closedAt
         FROM outbox_groups g`,
      ),
      addFailed: db.prepare<[string, number, string, number]>(
        'INSERT OR REPLACE INTO outbox_failed (grp, seq, error, failed_at) VALUES (?, ?, ?, ?)',
      ),
      // Drop a record once every subscriber is past it and none holds it (pending or failed).
      trim: db.prepare<{ seq: number }>(
        `DELETE FROM outbox WHERE seq = @seq
         AND NOT EXISTS (SELECT 1 FROM outbox_groups WHERE last_seq < @seq)
         AND NOT EXISTS (SELECT 1 FROM outbox_pending WHERE seq = @seq)
         AND NOT EXISTS (SELECT 1 FROM outbox_failed WHERE seq = @seq)`,
      ),
      pendingCounts: db.prepare<[], { name: string; n: number }>(
        `SELECT g.name, (SELECT COUNT(*) FROM outbox_pending p WHERE p.grp = g.name)
           + (SELECT COUNT(*) FROM outbox o WHERE o.seq > g.last_seq) AS n
         FROM outbox_groups g`,
      ),
      failedCounts: db.prepare<[], { name: string; n: number }>(
        `SELECT g.name, (SELECT COUNT(*) FROM outbox_failed f WHERE f.grp = g.name) AS n
         FROM outbox_groups g`,
      ),
    };
  }

  append(record: Omit<CloseRecord, 'seq'>): CloseRecord {
    const { sessionId, reason, closedAt, snapshot } = record;
    const info = this.s.append.run(sessionId, reason, closedAt, JSON.stringify(snapshot));
    return { seq: String(info.lastInsertRowid), sessionId, reason, closedAt, snapshot };
  }

  /** A new group starts at the first record still in the outbox, so it sees every one of them. */
  ensureGroup(name: string): number {
    const known = this.s.lastSeq.get(name);
    if (known !== undefined) return known;
    const first = this.s.firstSeq.get();
    const lastSeq = first === null || first === undefined ? (this.s.highestSeq.get() ?? 0) : first - 1;
    this.s.addGroup.run(name, lastSeq);
    return lastSeq;
  }

  claim(name: string, consumer: string, o: ClaimOptions): ClaimedClose[] {
    const lastSeq = this.ensureGroup(name);
    const limit = Math.max(0, Math.floor(o.limit)); // a negative LIMIT means "no limit" to SQLite
    const leaseUntil = o.now + o.leaseMs;
    const out: ClaimedClose[] = [];
    for (const row of this.s.due.all(name, o.now, limit)) {
      // Still held by a consumer after its lease ran out: that holder died mid-record.
      const redelivered = row.redelivered === 1 || row.consumer !== null;
      this.s.lease.run(consumer, leaseUntil, redelivered ? 1 : 0, name, row.seq);
      out.push({ ...toClose(row), attempt: row.attempts + 1, redelivered });
    }
    if (out.length >= limit) return out;
    const fresh = this.s.fresh.all(lastSeq, limit - out.length);
    for (const row of fresh) {
      this.s.addPending.run(name, row.seq, consumer, leaseUntil);
      out.push({ ...toClose(row), attempt: 1, redelivered: false });
    }
    if (fresh.length > 0) this.s.setLastSeq.run(fresh[fresh.length - 1]!.seq, name);
    return out;
  }

  ack(name: string, ref: string): void {
    this.ensureGroup(name);
    const seq = Number(ref);
    this.s.dropPending.run(name, seq);
    this.s.trim.run({ seq });
  }

  retry(name: string, ref: string, retryAt: number): void {
    this.ensureGroup(name);
    this.s.release.run(retryAt, name, Number(ref));
  }

  fail(name: string, ref: string, error: string, now: number): void {
    this.ensureGroup(name);
    const seq = Number(ref);
    if (this.s.dropPending.run(name, seq).changes > 0) this.s.addFailed.run(name, seq, error, now);
  }

  renew(name: string, consumer: string, refs: string[], leaseUntil: number): string[] {
    this.ensureGroup(name);
    return refs.filter((ref) => this.s.renew.run(leaseUntil, name, Number(ref), consumer).changes > 0);
  }

  release(name: string, consumer: string, refs: string[], o: ReleaseOptions): void {
    this.ensureGroup(name);
    const stmt = o.interrupted ? this.s.releaseInterrupted : this.s.releaseUnstarted;
    for (const ref of refs) stmt.run(o.now, name, Number(ref), consumer);
  }

  /** Per subscriber: the close time of its oldest record leased, waiting, or not yet delivered. */
  oldestClosedAt(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const { name, closedAt } of this.s.oldest.all()) if (closedAt !== null) out[name] = closedAt;
    return out;
  }

  /** Per subscriber: records leased or waiting for a retry, plus those not yet delivered. */
  pendingCounts(): Record<string, number> {
    return Object.fromEntries(this.s.pendingCounts.all().map((r) => [r.name, r.n]));
  }

  failedCounts(): Record<string, number> {
    return Object.fromEntries(this.s.failedCounts.all().map((r) => [r.name, r.n]));
  }
}

function toClose(row: OutboxRow): CloseRecord {
  return {
    seq: String(row.seq),
    sessionId: row.sessionId,
    reason: row.reason,
    closedAt: row.closedAt,
    snapshot: JSON.parse(row.snapshot) as SessionRecord,
  };
}
