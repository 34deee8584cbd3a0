import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { noAudit, type AuditSink } from '../core/audit.js';
import { isSessionGateError } from '../core/errors.js';
import { isToken } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';
import type { AddressMatcher } from './http/addresses.js';
import { clientFacts, type ClientFacts } from './http/client.js';
import { clearedCookie, readCookie, sessionCookie, type SessionCookieOptions } from './http/cookies.js';
import { basicCredentials } from './http/body.js';
import { sendProblem } from './http/pages.js';
import { ruleContext, type HttpScope, type RuleScope } from '../rules/context.js';
import type { RuleEvent } from '../rules/events.js';
import type { PolicyInput, PolicyOutcome } from './policy.js';
import type { CredentialInjector } from './credentials.js';
import type { ForwardResult } from './proxy/errors.js';
import type { ForwardOptions } from './proxy/upstream.js';
import { askForInput } from './respond.js';
import { cookieOptions, matchRoute, type ActiveRoute } from './router.js';
import { GatewayUris } from './sg-uris.js';

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
  /** Told of every answered request (the admin layer's request-duration metric). */
  observeRequest?: (route: string, status: number, seconds: number) => void;
}

/** One request's state as it moves through the access flow. */
interface Flow {
  req: IncomingMessage;
  res: ServerResponse;
  client: ClientFacts;
  route: ActiveRoute;
  cookie: SessionCookieOptions;
  /** Set-Cookie headers to send with whatever answers this request. */
  setCookies: string[];
  /** The session's id after token rotation, when the policy allowed it during this request. */
  rotatedId?: string;
  /** What rules see and change of this request (header edits, a response of their own). */
  http: HttpScope;
  /** The cookie's token and the session it validated to (rules read it instead of the store). */
  known?: { token?: string | undefined; record?: SessionRecord | undefined };
  /** An HTTP_RESPONSE rule failed: the request gets the rules' 500 page. */
  ruleFailure?: unknown;
}

/**
 * The request path of sessiongate (DESIGN §6): route, session check (one store step),
 * a new `inprogress` session with the standard variables when there is none, the access
 * policy, and proxying for allowed sessions. The gateway's own URIs live under `/sg/`.
 */
interface EventOutcome {
  responded: boolean;
  removed: boolean;
  dirty: boolean;
}
const NO_RULES: EventOutcome = Object.freeze({ responded: false, removed: false, dirty: false });

export class Gateway {
  readonly failures = { byUser: new Map<string, number>(), byClient: new Map<string, number>() };
  private readonly uris: GatewayUris;

  constructor(private readonly o: GatewayOptions) {
    this.uris = new GatewayUris(this, o.engine, o.routes, o.logger);
  }

  /** The node:http request listener. Never throws; errors become a 500 page and a log line. */
  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.o.observeRequest) this.observe(req, res, this.o.observeRequest);
    this.serve(req, res).catch((err: unknown) => {
      this.o.logger.error({ err: (err as Error).message, path: req.url?.split('?')[0] }, 'request failed');
      sendProblem(
        res,
        wantsHtml(req),
        500,
        'SG_ERR_INTERNAL',
        'Something went wrong',
        'The gateway could not handle this request.',
      );
    });
  };

  /** The node:http 'upgrade' listener: WebSockets of allowed sessions pass through. */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.passUpgrade(req, socket, head).catch((err: unknown) => {
      this.o.logger.error({ err: (err as Error).message }, 'upgrade failed');
      socket.destroy();
    });
  };

  /** Report the route (host and path prefix), status and duration once the answer is done. */
  private observe(
    req: IncomingMessage,
    res: ServerResponse,
    report: NonNullable<GatewayOptions['observeRequest']>,
  ): void {
    const t0 = performance.now();
    res.once('close', () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const route = path.startsWith('/sg/')
        ? undefined
        : matchRoute(this.o.routes, req.headers.host ?? '', path);
      const label = path.startsWith('/sg/') ? '/sg/' : route ? `${route.host}${route.pathPrefix}` : 'none';
      report(label, res.statusCode, (performance.now() - t0) / 1000);
    });
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = clientFacts(req, this.o.trusted);
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path.startsWith('/sg/')) return this.uris.handle(req, res, client, path);
    const route = matchRoute(this.o.routes, req.headers.host ?? '', path);
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
    const flow: Flow = {
      req,
      res,
      client,
      route,
      cookie: cookieOptions(route.profile, client.proto === 'https'),
      setCookies: [],
      http: { req, requestHeaders: {} },
    };
    let session = route.rules.has('HTTP_REQUEST') ? await this.beforeAccess(flow) : await this.current(flow);
    if (session === null) return; // a rule answered
    if (!session) {
      session = await this.start(flow);
      if (!session) return;
    }
    if (session.state === 'inprogress') {
      const input: PolicyInput = {};
      if (!client.browser) {
        const credentials = basicCredentials(req);
        if (credentials) input.credentials = credentials;
        const answer = req.headers['x-sessiongate-answer'];
        const pending = session.variables['sessiongate.policy.question'];
        if (typeof answer === 'string' && pending)
          input.answer = { key: JSON.parse(pending).key, value: answer };
      }
      const outcome = await this.runPolicy(flow, session, input);
      if (outcome.kind !== 'allow' || client.browser) return this.finish(flow, session, outcome);
      session = flow.rotatedId ? ((await this.o.engine.get(flow.rotatedId)) ?? undefined) : undefined;
      if (!session) return this.finish(flow, undefined, { kind: 'deny' });
    }
    if (session.state === 'allow') return this.proxy(flow, session);
    if (session.state === 'redirect')
      return this.redirect(flow, session.variables['sessiongate.policy.redirect'] ?? '/');
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
    const peek = token ? await this.o.engine.peek(token) : undefined;
    const mine = peek?.valid === true && peek.session.profile === flow.route.profileName;
    if (token && (mine || peek?.valid === false))
      flow.known = { token, record: mine ? peek.session : undefined };
    const sid = peek?.valid
      ? peek.session.id
      : token && isToken(token)
        ? this.o.engine.sid(token)
        : undefined;
    const r = await this.event(flow, 'HTTP_REQUEST', sid);
    if (r.responded) return null;
    if (r.dirty) return this.current(flow);
    if (!peek?.valid) return undefined;
    if (peek.session.profile !== flow.route.profileName) return undefined;
    return peek.touchDue ? this.current(flow) : peek.session;
  }

  /** The live session of the request's cookie in the route's profile, if any. */
  private async current(flow: Flow): Promise<SessionRecord | undefined> {
    const token = readCookie(flow.req.headers.cookie, flow.cookie.name);
    if (!token) return undefined;
    const v = await this.o.engine.validate(token);
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
  private async start(flow: Flow): Promise<SessionRecord | undefined> {
    try {
      const { id, token } = await this.o.engine.create({
        profile: flow.route.profileName,
        clientIp: flow.client.ip,
        variables: {
          'session.user.agent': String(flow.req.headers['user-agent'] ?? ''),
          'session.server.landinguri': flow.req.url ?? '/',
        },
      });
      flow.setCookies.push(sessionCookie(flow.cookie, token));
      const started = await this.event(flow, 'ACCESS_SESSION_STARTED', id);
      if (started.removed) {
        this.denied(flow, 'The session was refused.');
        return undefined;
      }
      if (started.responded) return undefined;
      (this.o.audit ?? noAudit).write({
        event: 'session_start',
        sessionId: id,
        clientIp: flow.client.ip,
        profile: flow.route.profileName,
      });
      return (await this.o.engine.get(id)) ?? undefined;
    } catch (err) {
      if (!isSessionGateError(err)) throw err;
      sendProblem(flow.res, flow.client.browser, err.status, err.code, 'Try again later', err.message);
      return undefined;
    }
  }

  async runPolicy(flow: Flow, session: SessionRecord, input: PolicyInput): Promise<PolicyOutcome> {
    forget(flow); // the policy writes the session; rules from here on read the store
    const outcome = await flow.route.runner.run(session, input, {
      clientIp: flow.client.ip,
      clientPort: flow.client.port,
      protocol: flow.client.proto,
      serverHostname: (flow.req.headers.host ?? '').replace(/:\d+$/, ''),
      agentEvent: async (s, agentId) =>
        void (await this.event(flow, 'ACCESS_POLICY_AGENT_EVENT', s.id, { agentId })),
    });
    if ((outcome.kind === 'logon' && outcome.error) || outcome.kind === 'deny') {
      const user = input.credentials?.username;
      if (user) this.failures.byUser.set(user, (this.failures.byUser.get(user) ?? 0) + 1);
      this.failures.byClient.set(flow.client.ip, (this.failures.byClient.get(flow.client.ip) ?? 0) + 1);
      const delay = this.o.failureDelayMs?.(flow.route) ?? 0;
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    }
    if (outcome.kind === 'allow' || outcome.kind === 'deny' || outcome.kind === 'redirect') {
      await this.event(flow, 'ACCESS_POLICY_COMPLETED', session.id, { result: outcome.kind }, false);
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
      flow.rotatedId = fresh.id;
      flow.setCookies.push(sessionCookie(flow.cookie, fresh.token));
    }
    return outcome;
  }

  /** Answer a policy outcome: ask for input, send the browser back to its landing URI, deny. */
  async finish(flow: Flow, session: SessionRecord | undefined, outcome: PolicyOutcome): Promise<void> {
    if (outcome.kind === 'deny' && session) await this.o.engine.close(session.id, 'denied');
    if (flow.http.responded) return this.sendRuleResponse(flow);
    switch (outcome.kind) {
      case 'logon':
      case 'question':
        return askForInput(flow.res, outcome, {
          browser: flow.client.browser,
          realm: flow.route.profile.realm,
          headers: { 'set-cookie': flow.setCookies },
        });
      case 'allow':
        return this.redirect(flow, session?.variables['session.server.landinguri'] ?? '/');
      case 'redirect':
        return this.redirect(flow, outcome.url);
      case 'deny':
        return this.denied(flow, outcome.reason);
    }
  }

  private denied(flow: Flow, reason?: string): void {
    flow.setCookies.push(clearedCookie(flow.cookie));
    sendProblem(
      flow.res,
      flow.client.browser,
      403,
      'SG_ERR_ACCESS_DENIED',
      'Access denied',
      reason ?? 'Access was denied.',
      {
        'set-cookie': flow.setCookies,
      },
    );
  }

  private redirect(flow: Flow, location: string): void {
    flow.res.writeHead(302, {
      location: safeLocation(location),
      'set-cookie': flow.setCookies,
      'cache-control': 'no-store',
    });
    flow.res.end();
  }

  private async proxy(flow: Flow, session: SessionRecord): Promise<void> {
    const { res, client, route } = flow;
    const allowed = aclAllows(route, session);
    const acl = await this.event(flow, allowed ? 'ACCESS_ACL_ALLOWED' : 'ACCESS_ACL_DENIED', session.id);
    if (acl.responded) return;
    if (!allowed) {
      return sendProblem(
        res,
        client.browser,
        403,
        'SG_ERR_ACCESS_DENIED',
        'Access denied',
        'Not allowed here.',
        {
          'set-cookie': flow.setCookies,
        },
      );
    }
    const injector = route.config.credentials ? this.o.credentials : undefined;
    if (injector) forget(flow); // it caches credentials in the session
    const facts = { clientIp: client.ip, protocol: client.proto };
    let cred = injector ? await injector.header(route, session, facts) : undefined;
    if (injector && !cred) return this.noCredentials(flow, 'SG_ERR_CREDENTIALS_UNAVAILABLE');
    for (;;) {
      const result = await this.forward(flow, session, cred ?? undefined);
      if (!cred || !injector) return this.upstreamFailed(flow, result);
      if (result.ok && result.withheld) {
        // The application refused this password: the next one, on the same request.
        const more = await injector.next(session.id, route.index, cred.state);
        cred = more ? await injector.header(route, session, facts) : null;
        if (!cred) return this.noCredentials(flow, 'SG_ERR_CREDENTIALS_REJECTED');
        continue;
      }
      if (result.ok && result.status === 401) await injector.next(session.id, route.index, cred.state);
      else if (result.ok) await injector.succeeded(session.id, route, cred.state);
      return this.upstreamFailed(flow, result);
    }
  }

  private noCredentials(
    flow: Flow,
    code: 'SG_ERR_CREDENTIALS_UNAVAILABLE' | 'SG_ERR_CREDENTIALS_REJECTED',
  ): void {
    sendProblem(
      flow.res,
      flow.client.browser,
      502,
      code,
      'The application cannot be logged on to',
      'The gateway has no working credentials for this application. Please contact your administrator.',
      { 'set-cookie': flow.setCookies },
    );
  }

  private forward(
    flow: Flow,
    session: SessionRecord,
    cred: { name: string; value: string; state: { index: number; passwords: string[] } } | undefined,
  ): Promise<ForwardResult> {
    const { req, client, route } = flow;
    // Built by assignment, not spreads: this runs for every proxied request.
    const requestHeaders: Record<string, string | null> = {
      'x-forwarded-for': client.forwardedFor,
      // The answer to a policy question (a one-time code) is for the gateway only.
      'x-sessiongate-answer': null,
    };
    if (!route.config.forward_authorization) requestHeaders.authorization = null;
    const edits = flow.http.requestHeaders;
    for (const name in edits) requestHeaders[name] = edits[name] ?? null;
    if (cred) requestHeaders[cred.name] = cred.value;
    const options: ForwardOptions = {
      clientIp: client.peer,
      proto: client.proto,
      host: req.headers.host ?? '',
      requestHeaders,
      stripCookies: [flow.cookie.name],
    };
    // A 401 is kept from the client while the store has another password to try.
    if (cred) options.withhold = (status: number) => status === 401;
    if (route.rules.has('HTTP_RESPONSE')) {
      options.onResponse = async (status, headers) => {
        await this.responseRules(flow, session, status, headers);
        addCookies(flow, headers);
      };
    } else if (flow.setCookies.length > 0) {
      options.onResponse = (_status, headers) => addCookies(flow, headers);
    }
    return route.upstream.forward(req, flow.res, options);
  }

  /** HTTP_RESPONSE: rules see and edit the upstream's answer before it is sent. */
  private async responseRules(
    flow: Flow,
    session: SessionRecord,
    status: number,
    headers: Record<string, string | string[]>,
  ): Promise<void> {
    const scope: RuleScope = {
      engine: this.o.engine,
      logger: this.o.logger,
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
      // The proxy fails the request; upstreamFailed() turns this into the rules' 500 page.
      flow.ruleFailure = err;
      throw err;
    }
  }

  private upstreamFailed(flow: Flow, result: ForwardResult): void {
    const { res, client, route } = flow;
    if (flow.ruleFailure !== undefined) throw flow.ruleFailure;
    if (!result.ok && result.reason === 'client_aborted') return; // nobody is listening any more
    if (!result.ok) {
      this.o.logger.warn(
        { route: route.index, reason: result.reason, status: result.status },
        'upstream failed',
      );
      const timeout = result.status === 504;
      sendProblem(
        res,
        client.browser,
        result.status,
        timeout ? 'SG_ERR_UPSTREAM_TIMEOUT' : 'SG_ERR_UPSTREAM_UNAVAILABLE',
        timeout ? 'The application did not answer in time' : 'The application is not reachable',
        'Please try again in a moment.',
        { 'set-cookie': flow.setCookies },
      );
    }
  }

  /**
   * Raise a rule event for this flow. Returns whether a rule answered the request (sent here,
   * unless `send` is false) and whether it removed the flow's session.
   */
  private event(
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
    const scope: RuleScope = { engine: this.o.engine, logger: this.o.logger, sessionId, http: flow.http };
    if (policy) scope.policy = policy;
    if (flow.known) scope.known = flow.known;
    await flow.route.rules.run(name, (rule) => ruleContext(name, rule, scope), sessionId);
    // Once a rule wrote, what this request knew of the session is stale for later events too.
    if (scope.dirty) forget(flow);
    const responded = flow.http.responded !== undefined;
    if (responded && send) this.sendRuleResponse(flow);
    return { responded, removed: scope.removed === true, dirty: scope.dirty === true };
  }

  private sendRuleResponse(flow: Flow): void {
    const r = flow.http.responded!;
    flow.res.writeHead(r.status, {
      ...r.headers,
      'content-length': Buffer.byteLength(r.body),
      ...(flow.setCookies.length ? { 'set-cookie': flow.setCookies } : {}),
    });
    flow.res.end(r.body);
  }

  private async passUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const client = clientFacts(req, this.o.trusted);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = path.startsWith('/sg/')
      ? undefined
      : matchRoute(this.o.routes, req.headers.host ?? '', path);
    const cookie = route ? cookieOptions(route.profile, client.proto === 'https') : undefined;
    const token = cookie ? readCookie(req.headers.cookie, cookie.name) : undefined;
    const v = token ? await this.o.engine.validate(token) : undefined;
    if (
      !route ||
      !cookie ||
      !v?.valid ||
      v.session.state !== 'allow' ||
      v.session.profile !== route.profileName
    ) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const result = await route.upstream.upgrade(req, socket, head, {
      clientIp: client.peer,
      proto: client.proto,
      host: req.headers.host ?? '',
      requestHeaders: { 'x-forwarded-for': client.forwardedFor },
      stripCookies: [cookie.name],
    });
    if (!result.ok && !socket.destroyed) {
      socket.end(`HTTP/1.1 ${result.status} Bad Gateway\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    }
  }
}

/** The route's ACL: with `acl.users` or `acl.groups`, the session's user must be listed or in a group. */
function aclAllows(route: ActiveRoute, session: SessionRecord): boolean {
  const acl = route.config.acl;
  if (!acl) return true;
  if (acl.users?.includes(session.user ?? '')) return true;
  const groups = (session.variables['session.logon.last.groups'] ?? '').split(',').filter(Boolean);
  return acl.groups?.some((g) => groups.includes(g)) ?? false;
}

function wantsHtml(req: IncomingMessage): boolean {
  return (req.headers.accept ?? '').includes('text/html');
}

/** Only local paths or http(s) URLs go into Location (no header injection, no javascript:). */
function safeLocation(location: string): string {
  if (/[\r\n]/.test(location)) return '/';
  if (location.startsWith('/') && !location.startsWith('//')) return location;
  return /^https?:\/\//i.test(location) ? location : '/';
}

export type { Flow };

/** The cookies the gateway sets on this answer (a rotated session) go with the upstream's. */
function addCookies(flow: Flow, headers: Record<string, string | string[]>): void {
  if (flow.setCookies.length === 0) return;
  const existing = headers['set-cookie'];
  headers['set-cookie'] = [...(existing === undefined ? [] : [existing].flat()), ...flow.setCookies];
}

/** The gateway or a rule is about to write the session: what the request read of it is stale. */
function forget(flow: Flow): void {
  flow.known = undefined;
}
