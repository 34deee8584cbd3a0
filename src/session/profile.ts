import type { SessionLimits } from '../store/contract.js';

/**
 * An access profile: the timeouts and limits shared by the sessions it starts (APM's access
 * profile settings). Durations are seconds; 0 disables.
 *
 * @example
 * ```ts
 * const profile = accessProfile('default', { inactivityTimeout: 600, maxSessionsPerUser: 5 });
 * ```
 */
export interface AccessProfile {
  name: string;
  /** Idle timeout (APM "inactivity timeout"). Default 900. */
  inactivityTimeout: number;
  /** Absolute lifetime from creation (APM "maximum session timeout"). Default 604800 (7 days). */
  maxSessionTimeout: number;
  /** Time allowed to finish the access policy while `inprogress`. Default 300. */
  accessPolicyTimeout: number;
  /** Max sessions of one user (APM allows 1-1000); 0 = unlimited. */
  maxSessionsPerUser: number;
  onUserLimit: 'evict_oldest' | 'refuse';
  maxConcurrentSessions: number;
  /** Max unfinished logons of one client address (0 = unlimited). Default 20. */
  maxInProgressPerClientIp: number;
  /** Over it: close that address's oldest unfinished logon (default) or refuse the new one. */
  onClientIpLimit: 'evict_oldest' | 'refuse';
  /** Further settings readable with `data.get(..., { config: true })`. */
  extra: Record<string, string | number | boolean>;
}

export const PROFILE_DEFAULTS: Omit<AccessProfile, 'name'> = {
  inactivityTimeout: 900,
  maxSessionTimeout: 604_800,
  accessPolicyTimeout: 300,
  maxSessionsPerUser: 0,
  onUserLimit: 'evict_oldest',
  maxConcurrentSessions: 0,
  // Bounds what cookieless requests from one address can keep in the store (docs/security.md).
  maxInProgressPerClientIp: 20,
  onClientIpLimit: 'evict_oldest',
  extra: {},
};

export function accessProfile(
  name: string,
  settings: Partial<Omit<AccessProfile, 'name'>> = {},
): AccessProfile {
  return { ...PROFILE_DEFAULTS, ...settings, name };
}

export function limitsOf(p: AccessProfile): SessionLimits {
  return {
    maxSessionsPerUser: p.maxSessionsPerUser,
    onUserLimit: p.onUserLimit,
    maxConcurrentSessions: p.maxConcurrentSessions,
    maxInProgressPerClientIp: p.maxInProgressPerClientIp,
    onClientIpLimit: p.onClientIpLimit,
  };
}

/**
 * The configuration a session sees through `data.get(id, key, { config: true })`: its
 * profile's settings, with the timeouts as they are now for this session (after `modify`).
 */
export function effectiveConfig(
  p: AccessProfile,
  session: { idleTimeout: number; lifetime: number },
): Record<string, string> {
  const out: Record<string, string> = {
    profile: p.name,
    inactivity_timeout: String(session.idleTimeout),
    max_session_timeout: String(session.lifetime),
    access_policy_timeout: String(p.accessPolicyTimeout),
    max_sessions_per_user: String(p.maxSessionsPerUser),
    on_user_limit: p.onUserLimit,
    max_concurrent_sessions: String(p.maxConcurrentSessions),
    max_in_progress_per_client_ip: String(p.maxInProgressPerClientIp),
    on_client_ip_limit: p.onClientIpLimit,
  };
  for (const [k, v] of Object.entries(p.extra)) out[k] = String(v);
  return out;
}
