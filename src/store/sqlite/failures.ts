import type Database from 'better-sqlite3';
import type { FailureCount } from '../contract.js';

/** How many ended counters each new count deletes (oldest first). */
const PRUNE_BATCH = 8;

/**
 * The failure counters of the sqlite store (logon throttling), one row per counter in
 * `failure_counters`. Counting is one UPSERT, so concurrent processes on the same file each
 * get a distinct count; every count also deletes a few ended counters, so the table holds
 * about the counters of the current windows.
 *
 * @example
 * ```ts
 * const counters = new SqliteFailureCounters(db);
 * counters.count('user:ab12', 900_000, now); // { count: 1, resetAt: now + 900_000 }
 * ```
 */
export class SqliteFailureCounters {
  private readonly upsert: Database.Statement<[string, number, number, number, number], FailureCount>;
  private readonly prune: Database.Statement<[number, number]>;
  private readonly read: Database.Statement<[string, number], FailureCount>;
  private readonly decrement: Database.Statement<[string, number]>;
  private readonly remove: Database.Statement<[string]>;

  constructor(db: Database.Database) {
    // In UPDATE SET every right-hand side reads the row as it was: both CASEs see the old window.
    this.upsert = db.prepare(
      `INSERT INTO failure_counters (key, count, reset_at) VALUES (?, 1, ?)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN reset_at > ? THEN count + 1 ELSE 1 END,
         reset_at = CASE WHEN reset_at > ? THEN reset_at ELSE ? END
       RETURNING count, reset_at AS resetAt`,
    );
    this.prune = db.prepare(
      `DELETE FROM failure_counters WHERE key IN
         (SELECT key FROM failure_counters WHERE reset_at <= ? ORDER BY reset_at LIMIT ?)`,
    );
    this.read = db.prepare(
      'SELECT count, reset_at AS resetAt FROM failure_counters WHERE key = ? AND reset_at > ?',
    );
    this.decrement = db.prepare(
      'UPDATE failure_counters SET count = count - 1 WHERE key = ? AND reset_at > ? AND count > 0',
    );
    this.remove = db.prepare('DELETE FROM failure_counters WHERE key = ?');
  }

  /** Call inside a write transaction: the prune and the count commit together. */
  count(key: string, windowMs: number, now: number): FailureCount {
    this.prune.run(now, PRUNE_BATCH);
    const resetAt = now + windowMs;
    const row = this.upsert.get(key, resetAt, now, now, resetAt)!;
    return { count: row.count, resetAt: row.resetAt };
  }

  get(key: string, now: number): FailureCount {
    const row = this.read.get(key, now);
    return row ? { count: row.count, resetAt: row.resetAt } : { count: 0, resetAt: now };
  }

  uncount(key: string, now: number): void {
    this.decrement.run(key, now);
  }

  clear(key: string): void {
    this.remove.run(key);
  }
}
