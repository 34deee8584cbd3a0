import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { SessionGateError } from '../../core/errors.js';
import type { JsonObject, SessionRecord } from '../../core/session-types.js';

/** Bumped by every change to the tables below; kept in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 3;

export interface SqliteOptions {
  /**
   * `normal` (default): in WAL mode a commit survives the process being killed (`kill -9`),
   * since the WAL lives in the OS page cache. `full` also fsyncs every commit, so it survives
   * an OS crash or power loss, at a cost in write throughput.
   */
  synchronous?: 'normal' | 'full';
  /** How long a writer waits for another process's write lock before giving up (default 5000). */
  busyTimeoutMs?: number;
}

const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  user TEXT,
  client_ip TEXT,
  profile TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_access_at INTEGER NOT NULL,
  idle_timeout INTEGER NOT NULL,
  lifetime INTEGER NOT NULL,
  lifetime_deadline INTEGER,
  policy_deadline INTEGER,
  expires_at INTEGER,
  version INTEGER NOT NULL,
  variables TEXT NOT NULL,
  secure TEXT NOT NULL,
  cookies TEXT NOT NULL,
  session_cookie TEXT NOT NULL
);
-- The deadline index: the sweep reads only sessions that are due, never the whole table.
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_user_created ON sessions (user, created_at) WHERE user IS NOT NULL;
CREATE INDEX IF NOT EXISTS sessions_inprogress_ip ON sessions (client_ip) WHERE state = 'inprogress';

-- AUTOINCREMENT so a trimmed seq is never handed out again (subscribers track positions).
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  closed_at INTEGER NOT NULL,
  snapshot TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_groups (
  name TEXT PRIMARY KEY,
  last_seq INTEGER NOT NULL
);
-- consumer is NULL once a record was released for retry (not held by anyone).
CREATE TABLE IF NOT EXISTS outbox_pending (
  grp TEXT NOT NULL,
  seq INTEGER NOT NULL,
  consumer TEXT,
  lease_until INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  redelivered INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (grp, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox_failed (
  grp TEXT NOT NULL,
  seq INTEGER NOT NULL,
  error TEXT NOT NULL,
  failed_at INTEGER NOT NULL,
  PRIMARY KEY (grp, seq)
) WITHOUT ROWID;
-- Trimming asks "does any subscriber still hold this seq?" without knowing the subscriber.
CREATE INDEX IF NOT EXISTS outbox_pending_seq ON outbox_pending (seq);
CREATE INDEX IF NOT EXISTS outbox_failed_seq ON outbox_failed (seq);
`;

/** Version 2: failure counters of logon throttling (one row per counter, fixed window). */
const SCHEMA_V2 = `
CREATE TABLE IF NOT EXISTS failure_counters (
  key TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  reset_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS failure_counters_reset_at ON failure_counters (reset_at);
`;

/**
 * Version 3: session tags (SessionStore.tag / findByTag). One row per tag of a session; the
 * primary key lists a session's tags (close, rekey), the index finds a tag's sessions.
 */
const SCHEMA_V3 = `
CREATE TABLE IF NOT EXISTS session_tags (
  session_id TEXT NOT NULL,
  tag TEXT NOT NULL,
  PRIMARY KEY (session_id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS session_tags_tag ON session_tags (tag);
`;

/**
 * Open (creating if needed) the database file with the pragmas the store relies on, and bring
 * its schema up to date. Any failure is SG_ERR_STORE_UNAVAILABLE naming the path.
 */
export function openDatabase(path: string, options: SqliteOptions = {}): Database.Database {
  let db: Database.Database | undefined;
  try {
    if (path !== ':memory:' && path !== '') {
      mkdirSync(dirname(path), { recursive: true });
      ownerOnly(path);
    }
    db = new Database(path);
    // Before anything that may need a lock, so a second process waits instead of failing.
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    migrate(db);
    return db;
  } catch (err) {
    db?.close();
    throw storeError(path, err, true);
  }
}

/** The files SQLite keeps next to the database in WAL mode (and the rollback journal). */
const SIDE_FILES = ['-wal', '-shm', '-journal'];

/**
 * Make the database file readable by its owner only (0600, whatever the umask), like the key
 * ring: it holds user names, addresses and sealed secrets. SQLite creates `-wal`, `-shm` and
 * `-journal` with the database file's mode, so creating the file first is enough for new
 * files. An existing file (and side file) that group or others can read is tightened to the
 * owner's bits; a file this process may not chmod (another owner) is left as it is.
 */
function ownerOnly(path: string): void {
  try {
    const fd = openSync(path, 'wx', 0o600); // 'wx': only when it does not exist yet
    try {
      fchmodSync(fd, 0o600); // the umask may have taken bits from the mode given above
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  for (const file of [path, ...SIDE_FILES.map((suffix) => path + suffix)]) tighten(file);
}

function tighten(file: string): void {
  try {
    const stat = statSync(file);
    const mode = stat.mode & 0o777;
    if (stat.isFile() && (mode & 0o077) !== 0) chmodSync(file, mode & 0o700);
  } catch {
    // Missing (no side file yet) or not ours to change: SQLite opens it or reports why not.
  }
}

/** SQLite result codes that mean "the store cannot do its job right now", not a bug. */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|CORRUPT|NOTADB|READONLY|PROTOCOL)/;

/**
 * The error to raise for `err`: SG_ERR_STORE_UNAVAILABLE (one line, naming the file) for lock
 * and I/O failures, or for anything at all while opening; other errors pass through unchanged.
 */
export function storeError(path: string, err: unknown, opening = false): unknown {
  if (err instanceof SessionGateError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (!opening && !(typeof code === 'string' && UNAVAILABLE_CODES.test(code))) return err;
  const why = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ');
  const what = opening ? `cannot open sqlite store ${path}` : `sqlite store ${path}`;
  return new SessionGateError('SG_ERR_STORE_UNAVAILABLE', `${what}: ${why}`, { cause: err });
}

function migrate(db: Database.Database): void {
  const version = (): number => db.pragma('user_version', { simple: true }) as number;
  if (version() === SCHEMA_VERSION) return; // the common case takes no write lock
  db.transaction(() => {
    const found = version(); // again under the lock: another process may have just migrated
    if (found > SCHEMA_VERSION) {
      throw new SessionGateError(
        'SG_ERR_STORE_UNAVAILABLE',
        `sqlite store ${db.name} has schema version ${found}; this build knows up to ${SCHEMA_VERSION}`,
      );
    }
    if (found < 1) db.exec(SCHEMA_V1);
    if (found < 2) db.exec(SCHEMA_V2);
    if (found < 3) db.exec(SCHEMA_V3);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** A sessions row as selected by SESSION_COLUMNS: record fields, the JSON ones still text. */
export interface SessionRow extends Omit<
  SessionRecord,
  'variables' | 'secure' | 'cookies' | 'sessionCookie'
> {
  variables: string;
  secure: string;
  cookies: string;
  sessionCookie: string;
}

/** Selected under the record's own names, so a row becomes a record by parsing four columns. */
export const SESSION_COLUMNS = `id, state, user, client_ip AS clientIp, profile, created_at AS createdAt,
  last_access_at AS lastAccessAt, idle_timeout AS idleTimeout, lifetime,
  lifetime_deadline AS lifetimeDeadline, policy_deadline AS policyDeadline, expires_at AS expiresAt,
  version, variables, secure, cookies, session_cookie AS sessionCookie`;

export function rowToRecord(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    state: r.state,
    user: r.user,
    clientIp: r.clientIp,
    profile: r.profile,
    createdAt: r.createdAt,
    lastAccessAt: r.lastAccessAt,
    idleTimeout: r.idleTimeout,
    lifetime: r.lifetime,
    lifetimeDeadline: r.lifetimeDeadline,
    policyDeadline: r.policyDeadline,
    expiresAt: r.expiresAt,
    variables: JSON.parse(r.variables) as Record<string, string>,
    secure: JSON.parse(r.secure) as Record<string, string>,
    cookies: JSON.parse(r.cookies) as Record<string, JsonObject>,
    sessionCookie: JSON.parse(r.sessionCookie) as JsonObject,
    version: r.version,
  };
}

/** Named parameters (`@id`, `@variables`, ...) of a record for INSERT and UPDATE. */
export function recordParams(s: SessionRecord): Record<string, string | number | null> {
  return {
    id: s.id,
    state: s.state,
    user: s.user,
    clientIp: s.clientIp,
    profile: s.profile,
    createdAt: s.createdAt,
    lastAccessAt: s.lastAccessAt,
    idleTimeout: s.idleTimeout,
    lifetime: s.lifetime,
    lifetimeDeadline: s.lifetimeDeadline,
    policyDeadline: s.policyDeadline,
    expiresAt: s.expiresAt,
    version: s.version,
    variables: JSON.stringify(s.variables),
    secure: JSON.stringify(s.secure),
    cookies: JSON.stringify(s.cookies),
    sessionCookie: JSON.stringify(s.sessionCookie),
  };
}
