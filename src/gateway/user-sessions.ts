import type { AuditSink } from '../core/audit.js';
import { isSessionId } from '../core/ids.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';

/** One of a user's sessions as their own page and its JSON show it: never a token. */
export interface UserSessionView {
  /** The session's public id (not its token): what the end form names. */
  id: string;
  /** The first 8 characters of the id, enough for a person to tell sessions apart. */
  short_id: string;
  /** The session of the cookie this request came with. */
  current: boolean;
  profile: string;
  protocol: 'http' | 'ssh';
  /** The browser's User-Agent, or the SSH client's software version. */
  device: string;
  client_ip: string | null;
  /** SSH: `user@host:port` of the target. */
  ssh_target: string | null;
  /** ISO 8601, UTC. */
  started: string;
  last_activity: string;
}

/**
 * The live, allowed sessions of `user` in every profile (the same person, whichever application
 * they went to), this one first, then the most recently active.
 *
 * @example
 * ```ts
 * const views = await userSessions(engine, 'alice', currentId);
 * ```
 */
export async function userSessions(
  engine: SessionEngine,
  user: string,
  currentId: string,
): Promise<UserSessionView[]> {
  const mine = (await engine.listByUser(user)).filter((s) => s.state === 'allow' && s.user === user);
  mine.sort(
    (a, b) => Number(b.id === currentId) - Number(a.id === currentId) || b.lastAccessAt - a.lastAccessAt,
  );
  return mine.map((s) => view(s, currentId));
}

function view(s: SessionRecord, currentId: string): UserSessionView {
  const ssh = s.variables['session.server.protocol'] === 'ssh';
  const device = ssh ? s.variables['session.ssh.client.software'] : s.variables['session.user.agent'];
  return {
    id: s.id,
    short_id: s.id.slice(0, 8),
    current: s.id === currentId,
    profile: s.profile,
    protocol: ssh ? 'ssh' : 'http',
    device: device ?? '',
    client_ip: s.clientIp,
    ssh_target: ssh ? (s.variables['session.ssh.target'] ?? null) : null,
    started: new Date(s.createdAt).toISOString(),
    last_activity: new Date(s.lastAccessAt).toISOString(),
  };
}

/** Who ends sessions: the signed-in session, its user and address (for the audit trail). */
export interface Actor {
  session: SessionRecord & { user: string };
  clientIp: string;
}

/**
 * End one of the actor's own allowed sessions (reason `user_ended`). A malformed id, another
 * user's session, one still logging on and one that does not exist are alike: false, so the
 * answer (404) tells nothing about sessions that are not theirs.
 */
export async function endOwnSession(
  engine: SessionEngine,
  audit: AuditSink,
  actor: Actor,
  id: string | null,
): Promise<boolean> {
  if (!isSessionId(id)) return false;
  const target = await engine.get(id);
  if (!target || target.state !== 'allow' || target.user !== actor.session.user) return false;
  if (!(await engine.close(target.id, 'user_ended'))) return false;
  auditEnded(audit, actor, target);
  return true;
}

/** End every allowed session of the actor's user but the actor's own; returns how many. */
export async function endOtherSessions(
  engine: SessionEngine,
  audit: AuditSink,
  actor: Actor,
): Promise<number> {
  let ended = 0;
  for (const s of await engine.listByUser(actor.session.user)) {
    if (s.id === actor.session.id || s.state !== 'allow' || s.user !== actor.session.user) continue;
    if (!(await engine.close(s.id, 'user_ended'))) continue;
    auditEnded(audit, actor, s);
    ended++;
  }
  return ended;
}

function auditEnded(audit: AuditSink, actor: Actor, target: SessionRecord): void {
  audit.write({
    event: 'session_ended_by_user',
    sessionId: target.id,
    user: target.user,
    clientIp: actor.clientIp,
    actor: actor.session.id,
    profile: target.profile,
    protocol: target.variables['session.server.protocol'] === 'ssh' ? 'ssh' : 'http',
  });
}
