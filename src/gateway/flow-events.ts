import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import { ruleContext, type RuleScope } from '../rules/context.js';
import type { RuleEvent } from '../rules/events.js';
import type { SessionEngine } from '../session/engine.js';
import { forget, type Flow } from './flow.js';

/** What a rule event did to the request. */
export interface EventOutcome {
  /** A rule answered the request. */
  responded: boolean;
  /** A rule removed the flow's session. */
  removed: boolean;
  /** A rule wrote the session: what the request read of it is stale. */
  dirty: boolean;
}

const NO_RULES: EventOutcome = Object.freeze({ responded: false, removed: false, dirty: false });

/**
 * Raises the APM events of one request's flow on its route's rules (docs/rules.md): the scope
 * each rule sees, the rules' own answers, and HTTP_RESPONSE's edits of the upstream's answer.
 *
 * @example
 * const events = new FlowEvents(engine, logger);
 * const r = await events.event(flow, 'ACCESS_ACL_ALLOWED', session.id);
 * if (r.responded) return; // a rule answered (and it was sent)
 */
export class FlowEvents {
  constructor(
    private readonly engine: SessionEngine,
    private readonly logger: Logger,
  ) {}

  /**
   * Raise a rule event for this flow. Returns whether a rule answered the request (sent here,
   * unless `send` is false) and whether it removed the flow's session.
   */
  event(
    flow: Flow,
    name: RuleEvent,
    sessionId: string | undefined,
    policy?: RuleScope['policy'],
    send = true,
  ): EventOutcome | Promise<EventOutcome> {
    // Most events of most requests have no rules: no promise for those.
    if (!flow.route.rules.has(name)) return NO_RULES;
    return this.runEvent(flow, name, sessionId, policy, send);
  }

  private async runEvent(
    flow: Flow,
    name: RuleEvent,
    sessionId: string | undefined,
    policy: RuleScope['policy'] | undefined,
    send: boolean,
  ): Promise<EventOutcome> {
    const scope: RuleScope = { engine: this.engine, logger: this.logger, sessionId, http: flow.http };
    if (policy) scope.policy = policy;
    if (flow.known) scope.known = flow.known;
    await flow.route.rules.run(name, (rule) => ruleContext(name, rule, scope), sessionId);
    // Once a rule wrote, what this request knew of the session is stale for later events too.
    if (scope.dirty) forget(flow);
    const responded = flow.http.responded !== undefined;
    if (responded && send) this.sendRuleResponse(flow);
    return { responded, removed: scope.removed === true, dirty: scope.dirty === true };
  }

  /** Sends the answer a rule made (`HTTP::respond`), with the flow's cookies. */
  sendRuleResponse(flow: Flow): void {
    const r = flow.http.responded!;
    flow.res.writeHead(r.status, {
      ...r.headers,
      'content-length': Buffer.byteLength(r.body),
      ...(flow.setCookies.length ? { 'set-cookie': flow.setCookies } : {}),
    });
    flow.res.end(r.body);
  }

  /** HTTP_RESPONSE: rules see and edit the upstream's answer before it is sent. */
  async responseRules(
    flow: Flow,
    session: SessionRecord,
    status: number,
    headers: Record<string, string | string[]>,
  ): Promise<void> {
    const scope: RuleScope = {
      engine: this.engine,
      logger: this.logger,
      sessionId: session.id,
      http: { ...flow.http, response: { status, headers } },
    };
    if (flow.known) scope.known = flow.known;
    try {
      await flow.route.rules.run(
        'HTTP_RESPONSE',
        (rule) => ruleContext('HTTP_RESPONSE', rule, scope),
        session.id,
      );
    } catch (err) {
      // The proxy fails the request; the forwarding turns this into the rules' 500 page.
      flow.ruleFailure = err;
      throw err;
    }
  }
}
