import type { ProfileConfig } from '../gateway/config/schema.js';
import type { SshAllowEntry, SshRouteConfig } from '../gateway/config/ssh-schema.js';
import type { PolicyRunner } from '../gateway/policy.js';
import { matchHost, type Destination } from './destination.js';

/** An SSH route ready to serve: its config, profile and policy runner. */
export interface SshRoute {
  index: number;
  config: SshRouteConfig;
  profileName: string;
  profile: ProfileConfig;
  runner: PolicyRunner;
}

/** Who the policy allowed: the session's user and groups. */
export interface GatewayIdentity {
  user: string | null;
  groups: string[];
}

/**
 * The first route whose host patterns and ports cover the destination.
 *
 * @example
 * ```ts
 * const route = routeFor(routes, { targetUser: 'root', host: 'db1.internal', port: 22 });
 * ```
 */
export function routeFor(routes: readonly SshRoute[], dest: Destination): SshRoute | undefined {
  return routes.find(
    (r) => r.config.ports.includes(dest.port) && r.config.hosts.some((p) => matchHost(p, dest.host)),
  );
}

const listed = (list: readonly string[] | undefined, value: string): boolean =>
  list === undefined || list.includes('*') || list.includes(value);

/** Does this allow entry speak of the identity? (Neither users nor groups: it speaks of everyone.) */
function entryCovers(entry: SshAllowEntry, who: GatewayIdentity): boolean {
  if (entry.users === undefined && entry.groups === undefined) return true;
  const byUser = who.user !== null && (entry.users ?? []).some((u) => u === '*' || u === who.user);
  const byGroup = (entry.groups ?? []).some((g) => g === '*' || who.groups.includes(g));
  return byUser || byGroup;
}

/**
 * Whether the route's allow-list lets this identity log on as the target user to the
 * destination: some entry covers the user (or a group of theirs), names the target user and,
 * where it narrows them, the host and port.
 *
 * @example
 * ```ts
 * if (!mayReach(route, { user: 'alice', groups: ['dba'] }, dest)) deny();
 * ```
 */
export function mayReach(route: SshRoute, who: GatewayIdentity, dest: Destination): boolean {
  return route.config.allow.some(
    (entry) =>
      entryCovers(entry, who) &&
      listed(entry.target_users, dest.targetUser) &&
      (entry.hosts === undefined || entry.hosts.some((p) => matchHost(p, dest.host))) &&
      (entry.ports === undefined || entry.ports.includes(dest.port)),
  );
}

/** Environment variables the route lets the client pass on (`LC_*`: a prefix). */
export function envAllowed(route: SshRoute, name: string): boolean {
  return route.config.env.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name));
}

/** Whether the policy of the route's profile asks the client for a gateway logon. */
export function needsGatewayLogon(route: SshRoute): boolean {
  return route.profile.policy.some((s) => s === 'logon' || (typeof s === 'object' && 'authenticate' in s));
}
