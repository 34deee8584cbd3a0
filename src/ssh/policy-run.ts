import type { ClientInfo } from 'ssh2';
import type { PolicyInput, PolicyOutcome } from '../gateway/policy.js';
import type { LogonThrottle } from '../gateway/throttle.js';
import type { SessionEngine } from '../session/engine.js';
import type { SshRoute } from './access.js';
import type { Destination } from './destination.js';
import type { SessionEvents } from './session-events.js';

export interface PolicyRunDeps {
  engine: SessionEngine;
  throttle: LogonThrottle;
  events: SessionEvents;
  failureDelayMs(route: SshRoute): number;
}

/**
 * One step of an SSH connection's gateway logon on the route's policy, as the HTTP gateway runs
 * it: under the store's logon throttle (a throttled logon is a denial that says when to try
 * again), with the profile's failure delay after a refusal, and with the SSH facts the plugins
 * get (`protocol: ssh`, the target as `server_*`).
 *
 * @example
 * ```ts
 * const out = await runSshPolicy(deps, { route, dest, info, sessionId }, { credentials });
 * ```
 */
export async function runSshPolicy(
  d: PolicyRunDeps,
  c: { route: SshRoute; dest: Destination; info: ClientInfo; sessionId: string },
  input: PolicyInput,
): Promise<PolicyOutcome> {
  const session = await d.engine.get(c.sessionId);
  if (!session) return { kind: 'deny', reason: 'This logon ended before it was finished.' };
  const user = input.credentials?.username;
  const out = await d.throttle.run(c.route.profile.logon_throttle, user, c.info.ip, () =>
    c.route.runner.run(session, input, {
      clientIp: c.info.ip,
      clientPort: c.info.port,
      protocol: 'ssh',
      serverHostname: c.dest.host,
      serverUsername: c.dest.targetUser,
      serverPort: c.dest.port,
      agentEvent: (s, agentId) => d.events.agentEvent(s.id, agentId),
    }),
  );
  if ((out.kind === 'logon' && out.error) || out.kind === 'deny') {
    const delay = d.failureDelayMs(c.route);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  }
  if (out.kind === 'throttled') {
    d.events.throttled(c.sessionId, user, c.info.ip, out);
    return { kind: 'deny', reason: `Too many failed logons. Try again in ${out.retryAfterSeconds} s.` };
  }
  return out;
}
