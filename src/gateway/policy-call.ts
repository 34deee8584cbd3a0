import type { AaOutcome, PluginHost } from '../plugins/host.js';
import type { ConnectionFacts } from '../plugins/types.js';
import type { SessionEngine } from '../session/engine.js';
import type { PolicyStep, ProfileConfig } from './config/schema.js';
import type { PolicyRequest } from './policy-types.js';

export const USERNAME_VAR = 'session.logon.last.username';
export const PASSWORD_VAR = 'session.logon.last.password';
export const GROUPS_VAR = 'session.logon.last.groups';
/** When the session's user last completed a logon (Unix seconds): the policy's allow, or a step-up. */
export const LOGON_TIME_VAR = 'session.logon.last.time';

/**
 * Call the AA plugin of an authenticate or authorize step with the session's facts: the user
 * (the session's, else the logon name), the logon password from the secure variable
 * `passwordVar`, and the answer to the question the step asked, if this request brings it.
 *
 * @example
 * ```ts
 * const result = await callStep({ engine, host, profile }, id, { authenticate: 'users' }, request, undefined);
 * ```
 */
export async function callStep(
  o: { engine: SessionEngine; host: PluginHost; profile: ProfileConfig },
  id: string,
  step: Extract<PolicyStep, { authenticate: string } | { authorize: string }>,
  request: PolicyRequest,
  answer: { key: string; value: string } | undefined,
  passwordVar = PASSWORD_VAR,
): Promise<AaOutcome> {
  const username = await o.engine.data.get(id, USERNAME_VAR);
  const password = await o.engine.data.get(id, passwordVar, { secure: true });
  const user = (await o.engine.get(id))?.user ?? username ?? null;
  const keyValuePairs: Record<string, string> = {};
  if (password !== undefined) keyValuePairs.password = password;
  if (answer) keyValuePairs[answer.key] = answer.value;
  const facts: ConnectionFacts = {
    protocol: request.protocol,
    connection_name: o.profile.realm,
    client_ip: request.clientIp,
    client_port: request.clientPort,
    gateway_user: user,
    server_hostname: request.serverHostname,
    key_value_pairs: keyValuePairs,
    ...(request.serverUsername !== undefined ? { server_username: request.serverUsername } : {}),
    ...(request.serverPort !== undefined ? { server_port: request.serverPort } : {}),
  };
  if ('authenticate' in step) return o.host.authenticate(step.authenticate, id, facts);
  const groups = await o.engine.data.get(id, GROUPS_VAR);
  return o.host.authorize(step.authorize, id, {
    ...facts,
    gateway_groups: groups ? groups.split(',') : [],
  });
}

/** The engine's clock in whole Unix seconds, as LOGON_TIME_VAR holds it. */
export function unixNow(engine: SessionEngine): string {
  return String(Math.floor(engine.clock.now() / 1000));
}
