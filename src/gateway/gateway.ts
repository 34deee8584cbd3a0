import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { noAudit, type AuditSink } from '../core/audit.js';
import { isSessionGateError } from '../core/errors.js';
import { isToken } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionEngine, ValidateResult } from '../session/engine.js';
import type { CredentialInjector } from './credentials.js';
import { forget, type Flow } from './flow.js';
import { FlowEvents } from './flow-events.js';
import { Forwarding } from './forwarding.js';
import { ForwardAuth } from './forward-auth.js';
import { landingLocation } from './forward-auth-target.js';
import type { AddressMatcher } from './http/addresses.js';
import { clientFacts } from './http/client.js';
import { clearedCookie, readCookie, sessionCookie } from './http/cookies.js';
import { admitRequest } from './http/admit.js';
import { configuredLocation } from './http/location.js';
import { basicCredentials } from './http/body.js';
import { PAGE_HEADERS, sendProblem } from './http/pages.js';
import { stripClientHeaders } from './identity/headers.js';
import type { PolicyInput, PolicyOutcome } from './policy.js';
import { answerThrottled, askForInput } from './respond.js';
import { cookieOptions, matchRoute, type ActiveRoute } from './router.js';
import { GatewayUris, pendingQuestion, type PolicySteps } from './sg-uris.js';
import type { BackchannelLogout } from './oidc-backchannel.js';
import type { TokenRefresh } from './oidc-refresh.js';
import { bearerToken, BearerTokenRefused, type BearerTokens } from './bearer.js';
import { StepUpFlow } from './step-up-flow.js';
import { answerFailure, observeRequest } from './request-end.js';
import { LogonThrottle } from './throttle.js';
import { deniedHelp, sendDenied, type DeniedHelp } from './denied.js';
import { passUpgrade } from './upgrade.js';
import type { UserPages } from './user-pages.js';

export interface GatewayOptions {
  engine: SessionEngine;
  routes: ActiveRoute[];
  trusted: AddressMatcher;
  logger: Logger;
  /** Milliseconds to hold back the answer to a failed logon (APM's failure delay). */
  failureDelayMs?: (route: ActiveRoute) => number;
  /** Where session starts and policy results are recorded. */
  audit?: AuditSink;
  /** Upstream logon with credentials from a credential store (routes with `credentials`). */
  credentials?: CredentialInjector;
  /** Told of every request (the admin layer's metrics); status 499: the client went away first. */
  observeRequest?: (route: string, status: number, seconds: number) => void;
  /** The OpenID providers' back-channel logout (`POST /sg/oidc/backchannel-logout`). */
  backchannel?: BackchannelLogout;
  /** Bearer access tokens on routes with `bearer` (API clients, no cookie). */
  bearer?: BearerTokens;
  /** Refreshes the OpenID Connect access tokens of signed-in sessions as they near their end. */
  refresh?: TokenRefresh;
  /** A signed-in user's own pages: `/sg/sessions`, `/sg/password`. */
  userPages?: UserPages;
}

/**
 * The request path of sessiongate (docs/gateway.md, "A request, step by step"): route, session check (one store step),
 * a new `inprogress` session with the standard variables when there is none, the access
 * policy, and proxying for allowed sessions. The gateway's own URIs live under `/sg/`.
 */
export class Gateway implements PolicySteps {
  /** Failed logons counted in the store (shared by every process on it), read before each logon. */
  private readonly throttle: LogonThrottle;
  private readonly uris: GatewayUris;
  private readonly events: FlowEvents;
  private readonly forwarding: Forwarding;
  private readonly stepUps: StepUpFlow;
  /** The last policy run queued on each session id (removed when the queue empties). */
  private readonly policyRuns = new Map<string, Promise<void>>();

  constructor(private readonly o: GatewayOptions) {
    this.uris = new GatewayUris(
      this,
      o.engine,
      o.routes,
      o.logger,
      o.backchannel,
      o.userPages,
      new ForwardAuth(this, o),
    );
    this.events = new FlowEvents(o.engine, o.logger);
    this.throttle = new LogonThrottle(o.engine.store, o.engine.clock);
    this.forwarding = new Forwarding(this.events, o.logger, o.credentials, o.engine);
    this.stepUps = new StepUpFlow({ ...o, proceed: (flow, s) => this.forwarding.proxy(flow, s) });
  }

  /**
   * A step-up re-authentication answered at the logon page (GatewayUris: `input`), or begun at
   * forward-auth's logon URL (no input: the browser comes back to that URL when it is done).
   */
  stepUp(flow: Flow, session: SessionRecord, input?: PolicyInput): Promise<void> {
    return this.stepUps.handle(flow, session, input);
  }

  /** The node:http request listener. Never throws; errors become a 500 page and a log line. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.o.observeRequest) observeRequest(req, res, this.o.routes, this.o.observeRequest);
    let answered: void | Promise<void>;
    try {
      answered = this.serve(req, res);
    } catch (err) {
      this.failed(req, res, err);
      return;
    }
    answered?.catch((err: unknown) => this.failed(req, res, err));
  };

  private failed(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    answerFailure(req, res, err, this.o.logger);
  }

  /** The node:http 'upgrade' listener: WebSockets of allowed sessions pass through. */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    passUpgrade(this.o, req, socket, head).catch((err: unknown) => {
      this.o.logger.error({ err: (err as Error).message }, 'upgrade failed');
      socket.destroy();
    });
  };

  /**
   * Not an async function: a request with a live, allowed session goes through two `then`s
   * (the store's answer, the upstream's) and allocates no suspended frames on the way.
   */
  private serve(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    const client = clientFacts(req, this.o.trusted);
    const admitted = admitRequest(req);
    if (typeof admitted === 'string') return refuseRequest(res, client.browser, admitted);
    const { path } = admitted;
    if (path.startsWith('/sg/')) {
      if (admitted.encodedSlash) return refuseRequest(res, client.browser, ENCODED_SLASH);
      return this.uris.handle(req, res, client, path);
    }
    const route = matchRoute(this.o.routes, req.headers.host ?? '', path);
    if (route && admitted.encodedSlash && !route.config.allow_encoded_slashes)
      return refuseRequest(res, client.browser, ENCODED_SLASH);
    if (!route) {
      return sendProblem(
        res,
        client.browser,
        404,
        'SG_ERR_NO_ROUTE',
        'Not found',
        'No application is configured here.',
      );
    }
    stripClientHeaders(req, route.identity); // before rules: a client cannot name itself
    const flow: Flow = {
      req,
      res,
      client,
      route,
      cookie: cookieOptions(route.profile, client.proto === 'https'),
      setCookies: [],
      http: { req, requestHeaders: {} },
    };
    const found = route.rules.has('HTTP_REQUEST') ? this.beforeAccess(flow) : this.current(flow);
    if (found instanceof Promise) return found.then((session) => this.access(flow, session));
    return this.access(flow, found);
  }

  /** What the session found (null: a rule answered) lets the request do. */
  private access(flow: Flow, session: SessionRecord | undefined | null): void | Promise<void> {
    if (session === null) return;
    if (session?.state === 'allow') {
      if (this.stepUps.due(flow, session)) return this.stepUps.handle(flow, session);
      const refreshed = this.o.refresh?.due(session);
      if (refreshed)
        return refreshed.then((s) =>
          s ? this.forwarding.proxy(flow, s) : this.withoutAccess(flow, undefined),
        );
      return this.forwarding.proxy(flow, session);
    }
    if (flow.route.config.bearer && this.o.bearer) {
      const token = bearerToken(flow.req);
      if (token) return this.withBearer(flow, this.o.bearer, token);
    }
    return this.withoutAccess(flow, session);
  }

  /** An API client's bearer token in place of a cookie: its session, or 401 (never a logon page). */
  private async withBearer(flow: Flow, bearer: BearerTokens, token: string): Promise<void> {
    let session: SessionRecord;
    try {
      session = await bearer.session(flow.route, token, flow.client.ip);
    } catch (err) {
      if (!isSessionGateError(err)) throw err;
      const invalid = err instanceof BearerTokenRefused;
      if (invalid) this.o.logger.info({ reason: err.message }, 'bearer token refused');
      const reason = err.message.replace(/["\\\r\n]/g, ' ');
      const challenge = `Bearer error="invalid_token", error_description="${reason}"`;
      return sendProblem(flow.res, false, err.status, err.code, 'Invalid token', err.message, {
        ...(invalid ? { 'www-authenticate': challenge } : {}),
      });
    }
    forget(flow); // the session was made here, not read with the cookie
    return this.forwarding.proxy(flow, session);
  }

  /** No allowed session yet: start one, run the policy, answer with its outcome. */
  private async withoutAccess(flow: Flow, found: SessionRecord | undefined): Promise<void> {
    const { req, client } = flow;
    let session = found ?? (await this.start(flow));
    if (!session) return;
    if (session.state === 'inprogress') {
      const input: PolicyInput = {};
      if (!client.browser) {
        const credentials = basicCredentials(req);
        if (credentials) input.credentials = credentials;
        const answer = req.headers['x-sessiongate-answer'];
        const pending = pendingQuestion(session);
        // A question answered at an identity provider comes back through its callback only.
        if (typeof answer === 'string' && pending && !pending.redirect)
          input.answer = { key: pending.key, value: answer };
      }
      const outcome = await this.runPolicy(flow, session, input);
      if (outcome.kind !== 'allow' || client.browser) return this.finish(flow, session, outcome);
      session = flow.rotatedId ? ((await this.o.engine.get(flow.rotatedId)) ?? undefined) : undefined;
      if (!session) return this.finish(flow, undefined, { kind: 'deny' });
    }
    if (session.state === 'allow') return this.forwarding.proxy(flow, session);
    if (session.state === 'redirect')
      return this.redirect(flow, configuredLocation(session.variables['sessiongate.policy.redirect'] ?? '/'));
    return this.denied(flow);
  }

  /**
   * HTTP_REQUEST comes before the access check, as in APM: a request a rule answers is no
   * session activity. The session is read without a touch for the rules (their reads of it
   * cost nothing more), then validated only when that would change something: a touch is
   * due (at most once per touch resolution) or a rule wrote.
   * null: a rule answered the request.
   */
  private async beforeAccess(flow: Flow): Promise<SessionRecord | undefined | null> {
    const token = readCookie(flow.req.headers.cookie, flow.cookie.name);
    const peeked = token ? this.o.engine.peekNow(token) : undefined;
    const peek = peeked instanceof Promise ? await peeked : peeked;
    const mine = peek?.valid === true && peek.session.profile === flow.route.profileName;
    if (token && (mine || peek?.valid === false))
      flow.known = { token, record: mine ? peek.session : undefined };
    const sid = peek?.valid
      ? peek.session.id
      : token && isToken(token)
        ? this.o.engine.sid(token)
        : undefined;
    const r = await this.events.event(flow, 'HTTP_REQUEST', sid);
    if (r.responded) return null;
    if (r.dirty) return this.current(flow);
    if (!peek?.valid) return undefined;
    if (peek.session.profile !== flow.route.profileName) return undefined;
    return peek.touchDue ? this.current(flow) : peek.session;
  }

  /**
   * The live session of the request's cookie in the route's profile, if any; directly when the
   * store had the answer at hand (no promise hops on the request path), else in a promise.
   */
  private current(flow: Flow): SessionRecord | undefined | Promise<SessionRecord | undefined> {
    const token = readCookie(flow.req.headers.cookie, flow.cookie.name);
    if (!token) return undefined;
    const v = this.o.engine.check(token);
    if (v instanceof Promise) return v.then((r) => this.known(flow, token, r));
    return this.known(flow, token, v);
  }

  private known(flow: Flow, token: string, v: ValidateResult): SessionRecord | undefined {
    if (!v.valid) {
      flow.known = { token };
      return undefined;
    }
    // A session of another profile exists but is not this route's: rules must ask the store.
    if (v.session.profile !== flow.route.profileName) return undefined;
    flow.known = { token, record: v.session };
    return v.session;
  }

  /** A new `inprogress` session with APM's standard variables; undefined if refused (answered). */
  async start(flow: Flow): Promise<SessionRecord | undefined> {
    try {
      const { id, token } = await this.o.engine.create({
        profile: flow.route.profileName,
        clientIp: flow.client.ip,
        variables: {
          'session.user.agent': String(flow.req.headers['user-agent'] ?? ''),
          'session.server.protocol': flow.client.proto,
          'session.server.landinguri': flow.req.url ?? '/',
        },
      });
      flow.setCookies.push(sessionCookie(flow.cookie, token));
      // Recorded before the rules run: a session they refuse was created all the same (it
      // existed, and its close is recorded), so starts and closes add up.
      (this.o.audit ?? noAudit).write({
        event: 'session_start',
        sessionId: id,
        clientIp: flow.client.ip,
        profile: flow.route.profileName,
      });
      const started = await this.events.event(flow, 'ACCESS_SESSION_STARTED', id);
      if (started.removed) {
        this.denied(flow, 'The session was refused.');
        return undefined;
      }
      if (started.responded) return undefined;
      return (await this.o.engine.get(id)) ?? undefined;
    } catch (err) {
      // A limit or the store refusing the session is the client's answer; a rule that failed
      // is not: its message is the rule's own, for the log (the request fails with a 500).
      if (!isSessionGateError(err) || err.code === 'SG_ERR_RULE_FAILED') throw err;
      sendProblem(flow.res, flow.client.browser, err.status, err.code, 'Try again later', err.message);
      return undefined;
    }
  }

  /**
   * Concurrent logon attempts on one session run one after the other (in this process): each
   * writes the logon variables the next step reads, so interleaved they could allow one user
   * under another attempt's user name. One that waited runs on the session as it is then.
   */
  async runPolicy(flow: Flow, session: SessionRecord, input: PolicyInput): Promise<PolicyOutcome> {
    const prior = this.policyRuns.get(session.id);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prior ? prior.then(() => mine) : mine;
    this.policyRuns.set(session.id, tail);
    try {
      if (prior) {
        await prior;
        const now = await this.o.engine.get(session.id);
        if (now?.state !== 'inprogress')
          return { kind: 'deny', reason: 'This logon ended before it was finished. Start again.' };
        session = now;
      }
      return await this.runPolicyAlone(flow, session, input);
    } finally {
      release();
      if (this.policyRuns.get(session.id) === tail) this.policyRuns.delete(session.id);
    }
  }

  private async runPolicyAlone(
    flow: Flow,
    session: SessionRecord,
    input: PolicyInput,
  ): Promise<PolicyOutcome> {
    forget(flow); // the policy writes the session; rules from here on read the store
    const user = input.credentials?.username;
    const outcome = await this.throttle.run(flow.route.profile.logon_throttle, user, flow.client.ip, () =>
      flow.route.runner.run(session, input, {
        clientIp: flow.client.ip,
        clientPort: flow.client.port,
        protocol: flow.client.proto,
        serverHostname: (flow.req.headers.host ?? '').replace(/:\d+$/, ''),
        agentEvent: async (s, agentId) =>
          void (await this.events.event(flow, 'ACCESS_POLICY_AGENT_EVENT', s.id, { agentId })),
      }),
    );
    if (outcome.kind === 'throttled') {
      const { scope, retryAfterSeconds } = outcome;
      const record = { sessionId: session.id, user, clientIp: flow.client.ip, scope };
      (this.o.audit ?? noAudit).write({ event: 'logon_throttled', ...record, retryAfterSeconds });
      this.o.logger.warn({ ...record, retryAfterSeconds }, 'logon throttled');
      return outcome;
    }
    if ((outcome.kind === 'logon' && outcome.error) || outcome.kind === 'deny') {
      const delay = this.o.failureDelayMs?.(flow.route) ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    }
    if (outcome.kind === 'allow' || outcome.kind === 'deny' || outcome.kind === 'redirect') {
      await this.events.event(flow, 'ACCESS_POLICY_COMPLETED', session.id, { result: outcome.kind }, false);
      const done = await this.o.engine.get(session.id);
      (this.o.audit ?? noAudit).write({
        event: 'policy_result',
        sessionId: session.id,
        user: done?.user ?? null,
        clientIp: flow.client.ip,
        result: done?.variables['session.policy.result'] ?? outcome.kind,
      });
    }
    if (outcome.kind === 'allow') {
      const fresh = await this.o.engine.rotate(session.id);
      (this.o.audit ?? noAudit).write({
        event: 'session_rotate',
        sessionId: session.id,
        newSessionId: fresh.id,
        user,
        clientIp: flow.client.ip,
      });
      flow.rotatedId = fresh.id;
      flow.setCookies.push(sessionCookie(flow.cookie, fresh.token));
    }
    return outcome;
  }

  /** Answer a policy outcome: ask for input, send the browser back to its landing URI, deny. */
  async finish(flow: Flow, session: SessionRecord | undefined, outcome: PolicyOutcome): Promise<void> {
    if (outcome.kind === 'deny' && session) await this.o.engine.close(session.id, 'denied');
    if (flow.http.responded) return this.events.sendRuleResponse(flow);
    switch (outcome.kind) {
      case 'logon':
      case 'question':
        return askForInput(flow.res, outcome, {
          browser: flow.client.browser,
          realm: flow.route.profile.realm,
          headers: { 'set-cookie': flow.setCookies },
        });
      case 'allow':
        return this.redirect(
          flow,
          landingLocation(
            session?.variables['session.server.landinguri'] ?? '/',
            flow.req.headers.host,
            this.o.routes,
          ),
        );
      case 'redirect':
        return this.redirect(flow, configuredLocation(outcome.url));
      case 'deny':
        return this.denied(flow, outcome.reason, await deniedHelp(this.throttle, flow, session, outcome));
      case 'throttled':
        return answerThrottled(flow.res, outcome, {
          browser: flow.client.browser,
          headers: { 'set-cookie': flow.setCookies },
        });
    }
  }

  private denied(flow: Flow, reason?: string, help?: DeniedHelp): void {
    flow.setCookies.push(clearedCookie(flow.cookie));
    sendDenied(flow.res, flow.client.browser, reason, help, { 'set-cookie': flow.setCookies });
  }

  /** `location` has been through landingLocation or configuredLocation. */
  private redirect(flow: Flow, location: string): void {
    flow.res.writeHead(302, {
      ...PAGE_HEADERS,
      location,
      'set-cookie': flow.setCookies,
      'cache-control': 'no-store',
    });
    flow.res.end();
  }
}

const ENCODED_SLASH = 'an encoded / or \\ (%2F, %5C) in the path';

/** A request refused before any decision: 400, and the connection closed (its framing is doubtful). */
function refuseRequest(res: ServerResponse, browser: boolean, reason: string): void {
  sendProblem(res, browser, 400, 'SG_ERR_BAD_REQUEST', 'Bad request', `Refused: ${reason}.`, {
    connection: 'close',
  });
}
