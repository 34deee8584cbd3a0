import type { ClientInfo } from 'ssh2';
import { noAudit, type AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';
import { ruleContext, type RuleScope } from '../rules/context.js';
import type { RuleEvent } from '../rules/events.js';
import type { RuleSet } from '../rules/ruleset.js';
import type { SessionEngine } from '../session/engine.js';
import type { GatewayIdentity, SshRoute } from './access.js';
import type { Destination } from './destination.js';

/**
 * The session side of an SSH connection that HTTP sessions share: the session's start with
 * its variables, the audit records, and the APM events on the config's rules (without an
 * HTTP request: `ctx.http` is absent for them).
 *
 * @example
 * ```ts
 * const events = new SessionEvents(engine, rules, logger, audit);
 * const started = await events.started(route, dest, info); // undefined: a rule refused it
 * ```
 */
export class SessionEvents {
  constructor(
    private readonly engine: SessionEngine,
    private readonly rules: RuleSet,
    private readonly logger: Logger,
    private readonly audit: AuditSink = noAudit,
  ) {}

  /** Create the connection's session; undefined when an ACCESS_SESSION_STARTED rule removed it. */
  async started(
    route: SshRoute,
    dest: Destination,
    info: ClientInfo,
  ): Promise<{ id: string; token: string } | undefined> {
    const { id, token } = await this.engine.create({
      profile: route.profileName,
      clientIp: info.ip,
      variables: {
        'session.server.protocol': 'ssh',
        'session.ssh.target': `${dest.targetUser}@${dest.host}:${dest.port}`,
        'session.ssh.target.user': dest.targetUser,
        'session.ssh.target.host': dest.host,
        'session.ssh.target.port': String(dest.port),
        'session.ssh.client.software': info.header.versions.software.slice(0, 200),
        ...(dest.gatewayUser ? { 'session.ssh.gateway_user': dest.gatewayUser } : {}),
      },
    });
    this.audit.write({
      event: 'session_start',
      sessionId: id,
      clientIp: info.ip,
      profile: route.profileName,
      protocol: 'ssh',
      target: `${dest.host}:${dest.port}`,
      target_user: dest.targetUser,
    });
    const scope = await this.raise('ACCESS_SESSION_STARTED', id);
    return scope.removed ? undefined : { id, token };
  }

  agentEvent(id: string, agentId: string): Promise<void> {
    return this.raise('ACCESS_POLICY_AGENT_EVENT', id, { agentId }).then(() => undefined);
  }

  /** The policy ended: its audit record and ACCESS_POLICY_COMPLETED. */
  async completed(id: string, result: 'allow' | 'deny', clientIp: string): Promise<void> {
    await this.raise('ACCESS_POLICY_COMPLETED', id, { result });
    const session = await this.engine.get(id);
    this.audit.write({
      event: 'policy_result',
      sessionId: id,
      user: session?.user ?? null,
      clientIp,
      result: session?.variables['session.policy.result'] ?? result,
      protocol: 'ssh',
    });
  }

  /** ACCESS_ACL_ALLOWED or _DENIED: the allow-list's verdict on the target. */
  async acl(id: string, allowed: boolean): Promise<void> {
    await this.raise(allowed ? 'ACCESS_ACL_ALLOWED' : 'ACCESS_ACL_DENIED', id);
  }

  /** Who the policy allowed: the session's user and groups. */
  async identity(id: string): Promise<GatewayIdentity> {
    const session = await this.engine.get(id);
    const groups = session?.variables['session.logon.last.groups'];
    return { user: session?.user ?? null, groups: groups ? groups.split(',') : [] };
  }

  throttled(
    id: string,
    user: string | undefined,
    clientIp: string,
    out: { scope: string; retryAfterSeconds: number },
  ): void {
    const record = { sessionId: id, user, clientIp, scope: out.scope };
    this.audit.write({ event: 'logon_throttled', ...record, retryAfterSeconds: out.retryAfterSeconds });
    this.logger.warn({ ...record, retryAfterSeconds: out.retryAfterSeconds }, 'ssh logon throttled');
  }

  private async raise(event: RuleEvent, sessionId: string, policy?: RuleScope['policy']): Promise<RuleScope> {
    const scope: RuleScope = { engine: this.engine, logger: this.logger, sessionId };
    if (policy) scope.policy = policy;
    if (this.rules.has(event))
      await this.rules.run(event, (rule) => ruleContext(event, rule, scope), sessionId);
    return scope;
  }
}
