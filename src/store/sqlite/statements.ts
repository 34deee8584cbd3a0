import type Database from 'better-sqlite3';
import type { SessionId } from '../../core/ids.js';
import type { SessionState } from '../../core/session-types.js';
import type { ListPage, ListQuery } from '../contract.js';
import { pageSize } from '../shared/records.js';
import { rowToRecord, SESSION_COLUMNS, type SessionRow } from './schema.js';

type Params = Record<string, string | number | null>;
type DueOfUser = Pick<
  SessionRow,
  'id' | 'lastAccessAt' | 'idleTimeout' | 'lifetimeDeadline' | 'policyDeadline'
>;

/**
 * The sessions-table statements, prepared once per connection and reused by every call.
 * @internal Not in the package's declaration files: better-sqlite3's types give the statement
 * type no name they could be written with.
 */
export function prepareSessionStatements(db: Database.Database) {
  return {
    byId: db.prepare<[SessionId], SessionRow>(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE id = ?`),
    exists: db.prepare<[SessionId], number>('SELECT 1 FROM sessions WHERE id = ?').pluck(),
    insert: db.prepare<Params>(
      `INSERT INTO sessions (id, state, user, client_ip, profile, created_at, last_access_at, idle_timeout,
         lifetime, lifetime_deadline, policy_deadline, expires_at, version, variables, secure, cookies,
         session_cookie)
       VALUES (@id, @state, @user, @clientIp, @profile, @createdAt, @lastAccessAt, @idleTimeout, @lifetime,
         @lifetimeDeadline, @policyDeadline, @expiresAt, @version, @variables, @secure, @cookies,
         @sessionCookie)`,
    ),
    update: db.prepare<Params>(
      `UPDATE sessions SET state = @state, user = @user, client_ip = @clientIp, profile = @profile,
         created_at = @createdAt, last_access_at = @lastAccessAt, idle_timeout = @idleTimeout,
         lifetime = @lifetime, lifetime_deadline = @lifetimeDeadline, policy_deadline = @policyDeadline,
         expires_at = @expiresAt, version = @version, variables = @variables, secure = @secure,
         cookies = @cookies, session_cookie = @sessionCookie
       WHERE id = @id`,
    ),
    /** Record an access, only if the session is still at the version the caller read. */
    touch: db.prepare<[number, number | null, SessionId, number], SessionRow>(
      `UPDATE sessions SET last_access_at = ?, expires_at = ?, version = version + 1
       WHERE id = ? AND version = ? RETURNING ${SESSION_COLUMNS}`,
    ),
    rekey: db.prepare<[SessionId, SessionId]>(
      'UPDATE sessions SET id = ?, version = version + 1 WHERE id = ?',
    ),
    delete: db.prepare<[SessionId]>('DELETE FROM sessions WHERE id = ?'),
    deleteReturning: db.prepare<[SessionId], SessionRow>(
      `DELETE FROM sessions WHERE id = ? RETURNING ${SESSION_COLUMNS}`,
    ),
    /** Due sessions through the partial deadline index, earliest first. */
    due: db.prepare<[number, number], SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions
       WHERE expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?`,
    ),
    byUser: db.prepare<[string], SessionRow>(
      `SELECT ${SESSION_COLUMNS} FROM sessions WHERE user = ? ORDER BY created_at, id`,
    ),
    /** A user's sessions past their deadline, with what expiryReason needs, oldest first. */
    dueOfUser: db.prepare<[string, number], DueOfUser>(
      `SELECT id, last_access_at AS lastAccessAt, idle_timeout AS idleTimeout,
         lifetime_deadline AS lifetimeDeadline, policy_deadline AS policyDeadline
       FROM sessions WHERE user = ? AND expires_at <= ? ORDER BY created_at, id`,
    ),
    countAll: db.prepare<[], number>('SELECT COUNT(*) FROM sessions').pluck(),
    countInProgressOfIp: db
      .prepare<[string], number>("SELECT COUNT(*) FROM sessions WHERE state = 'inprogress' AND client_ip = ?")
      .pluck(),
    /** The in-progress sessions of one address, oldest first (per-address eviction). */
    inProgressOfIpOldest: db
      .prepare<[string], SessionId>(
        "SELECT id FROM sessions WHERE state = 'inprogress' AND client_ip = ? ORDER BY created_at, id",
      )
      .pluck(),
    countByState: db.prepare<[], { state: SessionState; n: number }>(
      'SELECT state, COUNT(*) AS n FROM sessions GROUP BY state',
    ),
  };
}

/** @internal */
export type SessionStatements = ReturnType<typeof prepareSessionStatements>;

/**
 * `list()`: keyset pagination by id (`id > cursor ORDER BY id LIMIT n + 1`) with the filters
 * in SQL, so a page costs its size, not its position. One statement per combination of
 * filters (at most 16), prepared on first use.
 */
export class SessionLister {
  private readonly statements = new Map<string, Database.Statement<unknown[], SessionRow>>();

  constructor(private readonly db: Database.Database) {}

  page(query: ListQuery): ListPage {
    const where: string[] = [];
    const args: unknown[] = [];
    const filter = (sql: string, value: unknown) => (where.push(sql), args.push(value));
    if (query.user !== undefined) filter('user = ?', query.user);
    if (query.state !== undefined) filter('state = ?', query.state);
    if (query.clientIp !== undefined) filter('client_ip = ?', query.clientIp);
    if (query.cursor) filter('id > ?', query.cursor);
    const size = pageSize(query.limit);
    const rows = this.statement(where).all(...args, size + 1);
    const sessions = rows.slice(0, size).map(rowToRecord);
    return { sessions, nextCursor: rows.length > size ? sessions[sessions.length - 1]!.id : null };
  }

  private statement(where: string[]): Database.Statement<unknown[], SessionRow> {
    const filters = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const sql = `SELECT ${SESSION_COLUMNS} FROM sessions ${filters} ORDER BY id LIMIT ?`;
    let stmt = this.statements.get(sql);
    if (!stmt) this.statements.set(sql, (stmt = this.db.prepare<unknown[], SessionRow>(sql)));
    return stmt;
  }
}
