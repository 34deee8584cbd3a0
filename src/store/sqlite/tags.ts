import type Database from 'better-sqlite3';
import type { SessionId } from '../../core/ids.js';
import { checkTag, mergeTags } from '../shared/tags.js';

/**
 * The session tags of the sqlite store: rows (tag, session_id) of `session_tags` (schema
 * version 3), found by tag through its index. The store calls these inside the transaction
 * that closes or moves the session, so a tag never outlives its session.
 *
 * @example
 * ```ts
 * const tags = new SqliteTags(db);
 * tags.add(id, ['oidc-sid:3f2a:8c1d']); // inside a write transaction
 * tags.find('oidc-sid:3f2a:8c1d', now); // [id] while the session is live
 * ```
 */
export class SqliteTags {
  private readonly s;

  constructor(db: Database.Database) {
    this.s = {
      ofSession: db.prepare<[SessionId], string>('SELECT tag FROM session_tags WHERE session_id = ?').pluck(),
      insert: db.prepare<[string, SessionId]>(
        'INSERT OR IGNORE INTO session_tags (tag, session_id) VALUES (?, ?)',
      ),
      drop: db.prepare<[SessionId]>('DELETE FROM session_tags WHERE session_id = ?'),
      move: db.prepare<[SessionId, SessionId]>('UPDATE session_tags SET session_id = ? WHERE session_id = ?'),
      /** Through the tag index, joined to live sessions (a deadline equal to now has passed). */
      find: db
        .prepare<[string, number], SessionId>(
          `SELECT t.session_id FROM session_tags t JOIN sessions s ON s.id = t.session_id
           WHERE t.tag = ? AND (s.expires_at IS NULL OR s.expires_at > ?)`,
        )
        .pluck(),
    };
  }

  /** Attach `tags` to `id` (checked first: a refusal throws before any row is written). */
  add(id: SessionId, tags: readonly string[]): void {
    const { fresh } = mergeTags(this.s.ofSession.all(id), tags);
    for (const tag of fresh) this.s.insert.run(tag, id);
  }

  /** The session closed: its rows go in the same transaction. */
  drop(id: SessionId): void {
    this.s.drop.run(id);
  }

  /** The session got a new id (rekey): its rows follow it. */
  move(oldId: SessionId, newId: SessionId): void {
    this.s.move.run(newId, oldId);
  }

  find(tag: string, now: number): SessionId[] {
    return this.s.find.all(checkTag(tag), now);
  }
}
