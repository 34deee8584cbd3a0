import { noAudit, type AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';
import { forget, type Flow } from './flow.js';
import { basicCredentials } from './http/body.js';
import { sessionCookie } from './http/cookies.js';
import { sameOriginPath } from './http/location.js';
import { PAGE_HEADERS, sendProblem } from './http/pages.js';
import type { ActiveRoute } from './router.js';
import { parseQuestion, QUESTION_VAR, type PolicyInput } from './policy-types.js';
import { answerThrottled, askForInput } from './respond.js';
import { STEP_UP_LANDING, stepUpDue } from './step-up.js';
import { LogonThrottle } from './throttle.js';

export interface StepUpOptions {
  engine: SessionEngine;
  logger: Logger;
  audit?: AuditSink | undefined;
  failureDelayMs?: ((route: ActiveRoute) => number) | undefined;
  /** Proxy the request (an API client's, once it re-authenticated in it). */
  proceed(flow: Flow, session: SessionRecord): void | Promise<void>;
}

/**
 * The request side of step-up re-authentication (`reauth_within` on a route, step-up.ts): a
 * request of an allowed session whose logon is too old gets the logon form (browsers) or a
 * 401 challenge (API clients: Basic, then X-Sessiongate-Answer) instead of the application.
 * Browsers answer at `/sg/logon` and are sent back to the page they asked for; an API client's
 * request goes on once it brought the answers. Success rotates the token; a failure answers
 * 403 SG_ERR_REAUTH_FAILED and leaves the session as it was for its other routes.
 *
 * @example
 * ```ts
 * if (stepUp.due(flow, session)) return stepUp.handle(flow, session);
 * ```
 */
export class StepUpFlow {
  private readonly throttle: LogonThrottle;
  /** The last step-up run queued on each session id, as the gateway's policy runs. */
  private readonly runs = new Map<string, Promise<unknown>>();

  constructor(private readonly o: StepUpOptions) {
    this.throttle = new LogonThrottle(o.engine.store, o.engine.clock);
  }

  /** The route wants a more recent logon than the session's. */
  due(flow: Flow, session: SessionRecord): boolean {
    const within = flow.route.config.reauth_within;
    return within !== undefined && stepUpDue(session, within, this.o.engine.clock.now());
  }

  /** Run the step-up with what the request brings (`form`: the logon page's fields) and answer. */
  async handle(flow: Flow, session: SessionRecord, form?: PolicyInput): Promise<void> {
    const input = form ?? (flow.client.browser ? {} : apiInput(flow, session));
    forget(flow); // the step-up writes the session
    const outcome = await this.serial(session.id, async () => {
      const now = await this.o.engine.get(session.id);
      if (now?.state !== 'allow') return { kind: 'deny' as const, reason: 'This session has ended.' };
      // From the route itself (not the logon page): where to go once it is done.
      if (form === undefined) await this.o.engine.data.set(now.id, STEP_UP_LANDING, flow.req.url ?? '/');
      return this.throttle.run(
        flow.route.profile.logon_throttle,
        input.credentials?.username,
        flow.client.ip,
        () =>
          flow.route.runner.stepUp.run(now, input, {
            clientIp: flow.client.ip,
            clientPort: flow.client.port,
            protocol: flow.client.proto,
            serverHostname: (flow.req.headers.host ?? '').replace(/:\d+$/, ''),
          }),
      );
    });
    if (outcome.kind === 'allow') return this.passed(flow, session);
    const failed = (outcome.kind === 'logon' && outcome.error) || outcome.kind === 'deny';
    const delay = failed ? (this.o.failureDelayMs?.(flow.route) ?? 0) : 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const headers = { 'set-cookie': flow.setCookies };
    switch (outcome.kind) {
      case 'logon':
      case 'question':
        return askForInput(flow.res, outcome, {
          browser: flow.client.browser,
          realm: flow.route.profile.realm,
          headers,
        });
      case 'throttled':
        return answerThrottled(flow.res, outcome, { browser: flow.client.browser, headers });
      default: {
        const reason = outcome.kind === 'deny' ? outcome.reason : undefined;
        this.record(session, flow, 'failed');
        return sendProblem(
          flow.res,
          flow.client.browser,
          403,
          'SG_ERR_REAUTH_FAILED',
          'Re-authentication failed',
          `${reason ?? 'Re-authentication failed.'} This page needs a recent logon; your other pages stay open.`,
          headers,
        );
      }
    }
  }

  /** Logged on again: a new token (the old one stops working), then the page or the request. */
  private async passed(flow: Flow, session: SessionRecord): Promise<void> {
    const fresh = await this.o.engine.rotate(session.id);
    (this.o.audit ?? noAudit).write({
      event: 'session_rotate',
      sessionId: session.id,
      newSessionId: fresh.id,
      user: session.user,
      clientIp: flow.client.ip,
    });
    this.record({ ...session, id: fresh.id }, flow, 'ok'); // later lines carry the new id
    flow.rotatedId = fresh.id;
    flow.setCookies.push(sessionCookie(flow.cookie, fresh.token));
    const now = await this.o.engine.get(fresh.id);
    if (!now)
      return sendProblem(
        flow.res,
        flow.client.browser,
        403,
        'SG_ERR_ACCESS_DENIED',
        'Access denied',
        'This session has ended.',
      );
    if (!flow.client.browser) return this.o.proceed(flow, now);
    const location = sameOriginPath(now.variables[STEP_UP_LANDING] || '/');
    flow.res.writeHead(302, {
      ...PAGE_HEADERS,
      location,
      'set-cookie': flow.setCookies,
      'cache-control': 'no-store',
    });
    flow.res.end();
  }

  private record(session: SessionRecord, flow: Flow, result: 'ok' | 'failed'): void {
    const fields = { sessionId: session.id, user: session.user, clientIp: flow.client.ip };
    (this.o.audit ?? noAudit).write({ event: 'reauth', ...fields, result });
    this.o.logger.info({ ...fields, result }, 'step-up re-authentication');
  }

  /** Step-ups of one session run one after the other (in this process), like policy runs. */
  private async serial<T>(id: string, run: () => Promise<T>): Promise<T> {
    const prior = this.runs.get(id) ?? Promise.resolve();
    const mine = prior.then(run, run);
    const tail = mine.catch(() => undefined);
    this.runs.set(id, tail);
    try {
      return await mine;
    } finally {
      if (this.runs.get(id) === tail) this.runs.delete(id);
    }
  }
}

/** An API client's logon on this request: Basic credentials, the answer to the pending question. */
function apiInput(flow: Flow, session: SessionRecord): PolicyInput {
  const input: PolicyInput = {};
  const credentials = basicCredentials(flow.req);
  if (credentials) input.credentials = credentials;
  const answer = flow.req.headers['x-sessiongate-answer'];
  const pending = parseQuestion(session.variables[QUESTION_VAR]);
  if (typeof answer === 'string' && pending && !pending.redirect)
    input.answer = { key: pending.key, value: answer };
  return input;
}
