import type Database from 'better-sqlite3';
import type { SessionId } from '../core/ids.js';
import type { SessionState } from '../core/session-types.js';
import { SESSION_COLUMNS, type SessionRow } from './sqlite-schema.js';

type Params = Record<string, string | number | null>;

/** The sessions-table statements, prepared once per connection and reused by every call. */
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
    countAll: db.prepare<[], number>('SELECT COUNT(*) FROM sessions').pluck(),
    countInProgressOfIp: db
      .prepare<[string], number>("SELECT COUNT(*) FROM sessions WHERE state = 'inprogress' AND client_ip = ?")
      .pluck(),
    countByState: db.prepare<[], { state: SessionState; n: number }>(
      'SELECT state, COUNT(*) AS n FROM sessions GROUP BY state',
    ),
  };
}

export type SessionStatements = ReturnType<typeof prepareSessionStatements>;
