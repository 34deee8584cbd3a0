import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';
import type { Flow } from './flow.js';
import { aclAllows } from './forwarding.js';
import { landingLocation, originalRequest, returnUrl, type OriginalRequest } from './forward-auth-target.js';
import type { AddressMatcher } from './http/addresses.js';
import type { ClientFacts } from './http/client.js';
import { readCookie } from './http/cookies.js';
import { PAGE_HEADERS, sendProblem } from './http/pages.js';
import { normalizeTarget } from './http/target.js';
import { setIdentityHeaders } from './identity/headers.js';
import type { PolicyInput, PolicyOutcome } from './policy.js';
import { cookieOptions, matchRoute, type ActiveRoute } from './router.js';
import { stepUpDue } from './step-up.js';

/** nginx `auth_request`: 401 without an allowed session (nginx answers with its `error_page`). */
export const AUTH_PATH = '/sg/auth';
/** Traefik `forwardAuth`, Caddy `forward_auth`: a browser without a session is sent to log on. */
export const FORWARD_AUTH_PATH = '/sg/forward-auth';
/** Where a browser logs on for a forward-auth application: `?rd=` the URL to come back to. */
export const AUTH_LOGON_PATH = '/sg/auth/logon';
/** On a 401: the logon URL, for nginx to redirect to (`auth_request_set`). */
export const LOGON_HEADER = 'x-sessiongate-logon';

const LANDING = 'session.server.landinguri';

/** What the forward-auth URIs need of the gateway's request flow (Gateway implements them). */
export interface ForwardAuthSteps {
  start(flow: Flow): Promise<SessionRecord | undefined>;
  runPolicy(flow: Flow, session: SessionRecord, input: PolicyInput): Promise<PolicyOutcome>;
  finish(flow: Flow, session: SessionRecord | undefined, outcome: PolicyOutcome): Promise<void>;
  /** A step-up re-authentication (reauth_within) from this request; back here when it is done. */
  stepUp(flow: Flow, session: SessionRecord): Promise<void>;
}

export interface ForwardAuthOptions {
  engine: SessionEngine;
  routes: ActiveRoute[];
  trusted: AddressMatcher;
  logger: Logger;
}

/**
 * Forward-auth mode (docs/forward-auth.md): a proxy that serves an application itself asks the
 * gateway about each request. An allowed session of the route's profile, in the route's ACL,
 * gets 200 with the route's identity headers (the proxy copies them to the application); no
 * session gets 401 (`/sg/auth`) or a redirect to the logon (`/sg/forward-auth`, browsers); the
 * ACL refusing gets 403. Only a trusted proxy may ask: the original request is its word.
 *
 * @example
 * const fa = new ForwardAuth(gateway, { engine, routes, trusted, logger });
 * if (fa.handles(path, req.method)) return fa.handle(req, res, client, path);
 */
export class ForwardAuth {
  constructor(
    private readonly steps: ForwardAuthSteps,
    private readonly o: ForwardAuthOptions,
  ) {}

  handles(path: string, method: string | undefined): boolean {
    if (method !== 'GET' && method !== 'HEAD') return false;
    return path === AUTH_PATH || path === FORWARD_AUTH_PATH || path === AUTH_LOGON_PATH;
  }

  async handle(req: IncomingMessage, res: ServerResponse, client: ClientFacts, path: string): Promise<void> {
    if (path === AUTH_LOGON_PATH) return this.logon(req, res, client);
    if (!this.o.trusted.has(client.peer)) {
      this.o.logger.warn({ peer: client.peer }, 'forward-auth call from an untrusted address');
      return sendProblem(
        res,
        false,
        403,
        'SG_ERR_FORWARD_AUTH_UNTRUSTED',
        'Refused',
        'Forward-auth calls are taken from trusted proxies only (trusted_proxies).',
      );
    }
    const original = originalRequest(req, client.proto, this.o.routes);
    if (!original.ok) {
      this.o.logger.info({ reason: original.reason }, 'forward-auth call refused');
      return sendProblem(
        res,
        false,
        original.status,
        original.code,
        'Refused',
        `Refused: ${original.reason}.`,
      );
    }
    const session = await this.allowedSession(req, client, original.route);
    const reauth = original.route.config.reauth_within;
    // A route that wants a recent logon: an older one logs on again at the logon URL first.
    if (!session || (reauth !== undefined && stepUpDue(session, reauth, this.o.engine.clock.now())))
      return this.logonNeeded(res, client, original, path === FORWARD_AUTH_PATH);
    if (!aclAllows(original.route, session)) {
      return sendProblem(
        res,
        client.browser,
        403,
        'SG_ERR_ACCESS_DENIED',
        'Access denied',
        'Not allowed here.',
      );
    }
    const identity: Record<string, string | null> = {};
    await setIdentityHeaders(identity, original.route.identity, session, original.host);
    const headers: Record<string, string> = { 'cache-control': 'no-store', 'content-length': '0' };
    for (const [name, value] of Object.entries(identity)) if (value !== null) headers[name] = value;
    res.writeHead(200, headers);
    res.end();
  }

  /** The cookie's session in the route's profile when it is allowed; checking it is activity. */
  private async allowedSession(
    req: IncomingMessage,
    client: ClientFacts,
    route: ActiveRoute,
  ): Promise<SessionRecord | undefined> {
    const token = readCookie(req.headers.cookie, cookieOptions(route.profile, client.proto === 'https').name);
    if (!token) return undefined;
    const v = await this.o.engine.validate(token);
    if (!v.valid || v.session.profile !== route.profileName || v.session.state !== 'allow') return undefined;
    return v.session;
  }

  /** 401 with the logon URL in a header; or, asked to and for a browser, the redirect there. */
  private logonNeeded(
    res: ServerResponse,
    client: ClientFacts,
    original: OriginalRequest,
    redirect: boolean,
  ): void {
    const logon = `${AUTH_LOGON_PATH}?rd=${encodeURIComponent(original.url)}`;
    if (redirect && client.browser) {
      res.writeHead(302, { ...PAGE_HEADERS, location: logon, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    sendProblem(res, false, 401, 'SG_ERR_LOGON_REQUIRED', 'Logon required', 'Log on first.', {
      [LOGON_HEADER]: logon,
    });
  }

  /**
   * `GET /sg/auth/logon?rd=URL`: the logon of a forward-auth application, on the route of the
   * URL (with the proxied requests' normalization). The URL must be on this host or on a
   * configured route's host; after logon the browser is sent there.
   */
  private async logon(req: IncomingMessage, res: ServerResponse, client: ClientFacts): Promise<void> {
    const rd = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('rd') ?? '';
    const back = returnUrl(rd, req.headers.host, this.o.routes);
    const target = back ? normalizeTarget(back.target) : undefined;
    const route =
      back && target?.ok && !target.path.startsWith('/sg/') && !target.authority
        ? matchRoute(this.o.routes, back.host, target.path)
        : undefined;
    if (!back || !target?.ok || !route || (target.encodedSlash && !route.config.allow_encoded_slashes)) {
      return sendProblem(
        res,
        client.browser,
        400,
        'SG_ERR_BAD_REQUEST',
        'Bad request',
        'This return address is not one of this gateway’s applications.',
      );
    }
    const origin = target.path + target.query;
    const landing = back.sameOrigin ? origin : `${back.scheme}://${back.host}${origin}`;
    const flow: Flow = {
      req,
      res,
      client: { ...client, browser: true },
      route,
      cookie: cookieOptions(route.profile, client.proto === 'https'),
      setCookies: [],
      http: { req, requestHeaders: {} },
    };
    const token = readCookie(req.headers.cookie, flow.cookie.name);
    const v = token ? await this.o.engine.validate(token) : undefined;
    const found = v?.valid && v.session.profile === route.profileName ? v.session : undefined;
    const reauth = route.config.reauth_within;
    if (
      found?.state === 'allow' &&
      reauth !== undefined &&
      stepUpDue(found, reauth, this.o.engine.clock.now())
    )
      return this.steps.stepUp(flow, found); // done, it comes back here and goes on below
    if (found?.state === 'allow') {
      res.writeHead(302, {
        ...PAGE_HEADERS,
        location: landingLocation(landing, req.headers.host, this.o.routes),
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    const session = await this.inProgress(flow, found, origin, landing);
    if (!session) return; // answered (refused)
    const outcome = await this.steps.runPolicy(flow, session, {});
    const current = flow.rotatedId ? ((await this.o.engine.get(flow.rotatedId)) ?? session) : session;
    await this.steps.finish(flow, current, outcome);
  }

  /** The logon in progress, now landing at `landing`, or a new one (undefined: refused, answered). */
  private async inProgress(
    flow: Flow,
    found: SessionRecord | undefined,
    origin: string,
    landing: string,
  ): Promise<SessionRecord | undefined> {
    if (found?.state === 'inprogress') {
      // A page's own fetches (its icon) come here too while the user logs on: only a page the
      // user opened moves the landing URI.
      if (!navigation(flow.req)) return found;
      await this.o.engine.data.set(found.id, LANDING, landing);
      return (await this.o.engine.get(found.id)) ?? undefined;
    }
    // What the new session records as its landing URI, and what its rules see as the request.
    flow.req.url = origin;
    const session = await this.steps.start(flow);
    if (!session || landing === origin) return session;
    await this.o.engine.data.set(session.id, LANDING, landing);
    return (await this.o.engine.get(session.id)) ?? undefined;
  }
}

/** A page the user opened (or a client that does not say): not an image or script a page fetched. */
function navigation(req: IncomingMessage): boolean {
  const mode = req.headers['sec-fetch-mode'];
  return mode === undefined || mode === 'navigate';
}
