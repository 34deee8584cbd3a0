import { isIP } from 'node:net';
import type { PluginHost } from '../plugins/host.js';
import type { GatewayIdentity } from './access.js';
import type { Destination } from './destination.js';
import { connectTarget, type TargetCredential, type TargetResult } from './target.js';

export interface TargetLogon {
  host: PluginHost;
  /** The route's credential-store plugin; absent: the user's own password is relayed. */
  plugin: string | undefined;
  sessionId: string;
  dest: Destination;
  clientIp: string;
  who: GatewayIdentity;
  relayPassword: string | undefined;
  verifyHostKey(host: string, port: number, key: Buffer): true | string;
  timeoutMs: number;
}

/**
 * Log on to the session's target as SPS does: the credential store's private keys, then its
 * passwords (asked with SPS's arguments for the target), tried in order on one connection
 * after the host key was checked; `authentication_completed` once one worked. Without a
 * store, the user's own password.
 *
 * @example
 * ```ts
 * const t = await logOnToTarget({ host, plugin: 'vault', sessionId, dest, clientIp, who, relayPassword: undefined, verifyHostKey, timeoutMs: 10_000 });
 * ```
 */
export async function logOnToTarget(o: TargetLogon): Promise<TargetResult> {
  const { targetUser, host, port } = o.dest;
  const result = await connectTarget({
    host,
    port,
    username: targetUser,
    credentials: await credentialsFor(o),
    verifyHostKey: (key) => o.verifyHostKey(host, port, key),
    timeoutMs: o.timeoutMs,
  });
  if (result.ok && o.plugin) await o.host.authenticationCompleted(o.plugin, o.sessionId);
  return result;
}

async function credentialsFor(o: TargetLogon): Promise<TargetCredential[]> {
  if (!o.plugin)
    return o.relayPassword === undefined ? [] : [{ kind: 'password', password: o.relayPassword }];
  const { targetUser, host, port } = o.dest;
  const facts = {
    protocol: 'ssh',
    client_ip: o.clientIp,
    gateway_username: o.who.user,
    gateway_groups: o.who.groups,
    server_username: targetUser,
    server_hostname: host,
    server_ip: isIP(host) ? host : null,
    server_port: port,
  };
  const keys = await o.host.getPrivateKeyList(o.plugin, o.sessionId, facts);
  const passwords = await o.host.getPasswordList(o.plugin, o.sessionId, facts);
  return [
    ...keys.map(([, key]): TargetCredential => ({ kind: 'key', key })),
    ...passwords.map((password): TargetCredential => ({ kind: 'password', password })),
  ];
}
