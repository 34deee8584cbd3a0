import { expiryReason, type ExpiryReason } from '../core/deadline.js';
import type { SessionRecord } from '../core/session-types.js';
import { DERIVED_VARIABLES } from '../session/variables.js';

/** What the API shows in place of a secure value. */
export const MASK = '********';

/** A session as the admin API shows it (times ISO 8601, durations in seconds). */
export interface SessionView {
  id: string;
  state: SessionRecord['state'];
  user: string | null;
  client_ip: string | null;
  /** The browser's User-Agent (`session.user.agent`), or an SSH client's software version. */
  user_agent: string | null;
  /** `session.server.protocol`: http, https or ssh; null for a session made through the API. */
  protocol: string | null;
  created_at: string;
  last_access_at: string;
  /** When it ends if nothing else happens: the first of the three deadlines below. */
  expires_at: string | null;
  /** The close reason it will get at `expires_at` (which deadline comes first); null = never. */
  expiry_reason: ExpiryReason | null;
  idle_timeout: number;
  lifetime: number;
  lifetime_expires_at: string | null;
  /** The access policy timeout of a session whose logon is not finished (`inprogress`). */
  policy_expires_at: string | null;
}

/**
 * Which deadline ends the session at its `expiresAt`, as the close reason; null when it has none.
 *
 * @example
 * ```ts
 * expiryOf(record); // 'policy_timeout' for an inprogress session whose policy ends first
 * ```
 */
export function expiryOf(s: SessionRecord): ExpiryReason | null {
  return s.expiresAt === null ? null : expiryReason(s);
}

/** `GET /api/v1/sessions/{id}`: the session, its variables (secure ones masked) and plugin names. */
export interface SessionDetailView extends SessionView {
  variables: Record<string, string>;
  /** Plugins that hold a cookie in this session (their `session_ended` runs at close). */
  plugins: string[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

export function sessionView(s: SessionRecord): SessionView {
  return {
    id: s.id,
    state: s.state,
    user: s.user,
    client_ip: s.clientIp,
    user_agent: s.variables['session.user.agent'] || s.variables['session.ssh.client.software'] || null,
    protocol: s.variables['session.server.protocol'] || null,
    created_at: iso(s.createdAt),
    last_access_at: iso(s.lastAccessAt),
    expires_at: s.expiresAt === null ? null : iso(s.expiresAt),
    expiry_reason: expiryOf(s),
    idle_timeout: s.idleTimeout,
    lifetime: s.lifetime,
    lifetime_expires_at: s.lifetimeDeadline === null ? null : iso(s.lifetimeDeadline),
    policy_expires_at: s.policyDeadline === null ? null : iso(s.policyDeadline),
  };
}

/**
 * Every variable an admin may see: plain ones, the derived ones (`session.user.sessionid`,
 * the two timeouts, ...) and secure ones as `********`. Sorted by name.
 */
export function visibleVariables(s: SessionRecord): Record<string, string> {
  const all: Record<string, string> = { ...s.variables };
  for (const [name, derive] of Object.entries(DERIVED_VARIABLES)) {
    const value = derive(s);
    if (value !== undefined) all[name] = value;
  }
  for (const name of Object.keys(s.secure)) all[name] = MASK;
  const out: Record<string, string> = {};
  for (const name of Object.keys(all).sort()) out[name] = all[name]!;
  return out;
}

export function sessionDetailView(s: SessionRecord): SessionDetailView {
  return { ...sessionView(s), variables: visibleVariables(s), plugins: Object.keys(s.cookies).sort() };
}
