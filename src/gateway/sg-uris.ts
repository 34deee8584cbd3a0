import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../core/logger.js';
import type { SessionEngine } from '../session/engine.js';
import type { ClientFacts } from './http/client.js';
import { readCookie, clearedCookie } from './http/cookies.js';
import { readSmallBody, sameOrigin } from './http/body.js';
import { configuredLocation } from './http/location.js';
import type { ForwardAuth } from './forward-auth.js';
import { landingLocation } from './forward-auth-target.js';
import { loggedOutPage, messagePage, PAGE_HEADERS, sendHtml, sendProblem, STYLESHEET } from './http/pages.js';
import type { Flow } from './flow.js';
import { JWKS_PATH } from './identity/assertion.js';
import { providerLogoutUrl } from './oidc-logout.js';
import { BACKCHANNEL_PATH, backchannelLogout } from './oidc-backchannel-uri.js';
import type { BackchannelLogout } from './oidc-backchannel.js';
import { logoutPrompt } from './logout-prompt.js';
import { sendJwks } from './identity/jwks.js';
import { cookieOptions, type ActiveRoute } from './router.js';
import type { PolicyInput, PolicyOutcome } from './policy.js';
import type { SessionRecord } from '../core/session-types.js';
import { stepUpPending } from './step-up.js';
import type { UserPages } from './user-pages.js';

/**
 * The two steps of the request flow a logon form posts into: run the access policy with the
 * form's answers, then answer the browser with its outcome (Gateway implements them).
 */
export interface PolicySteps {
  runPolicy(flow: Flow, session: SessionRecord, input: PolicyInput): Promise<PolicyOutcome>;
  finish(flow: Flow, session: SessionRecord | undefined, outcome: PolicyOutcome): Promise<void>;
  /** Go on with a step-up re-authentication (reauth_within) and answer. */
  stepUp(flow: Flow, session: SessionRecord, input: PolicyInput): Promise<void>;
}

/**
 * The gateway's own URIs (`/sg/...`): the logon and question forms, logout, and the
 * stylesheet. They raise no HTTP events and are never proxied.
 */
export class GatewayUris {
  constructor(
    private readonly gateway: PolicySteps,
    private readonly engine: SessionEngine,
    private readonly routes: ActiveRoute[],
    private readonly logger: Logger,
    private readonly backchannel?: BackchannelLogout,
    private readonly userPages?: UserPages,
    private readonly forwardAuth?: ForwardAuth,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse, client: ClientFacts, path: string): Promise<void> {
    if (path === '/sg/static/sg.css' && req.method === 'GET') {
      res.writeHead(200, {
        ...PAGE_HEADERS,
        'content-type': 'text/css; charset=utf-8',
        'cache-control': 'max-age=3600',
      });
      res.end(STYLESHEET);
      return;
    }
    if (path === '/sg/logon' && (req.method === 'GET' || req.method === 'POST'))
      return this.logon(req, res, client);
    if (this.forwardAuth?.handles(path, req.method)) return this.forwardAuth.handle(req, res, client, path);
    if (path === '/sg/logout' && req.method === 'POST') return this.logout(req, res, client);
    if (this.userPages?.owns(path)) return this.userPages.handle(req, res, client, path);
    if (path === '/sg/logout' && (req.method === 'GET' || req.method === 'HEAD'))
      return logoutPrompt(res, client.browser);
    if (path === CALLBACK_PATH && req.method === 'GET') return this.callback(req, res, client);
    if (path === BACKCHANNEL_PATH && req.method === 'POST' && this.backchannel?.enabled)
      return backchannelLogout(req, res, this.backchannel);
    if (path === JWKS_PATH && (req.method === 'GET' || req.method === 'HEAD'))
      return sendJwks(res, this.routes);
    sendProblem(res, client.browser, 404, 'SG_ERR_NO_ROUTE', 'Not found', 'No such gateway page.');
  }

  /** The session of this browser in any profile's cookie, with a route that uses its profile. */
  private async find(req: IncomingMessage, client: ClientFacts) {
    for (const route of this.routes) {
      const cookie = cookieOptions(route.profile, client.proto === 'https');
      const token = readCookie(req.headers.cookie, cookie.name);
      if (!token) continue;
      const v = await this.engine.validate(token);
      if (v.valid && v.session.profile === route.profileName) return { route, cookie, session: v.session };
    }
    return undefined;
  }

  /**
   * Logout clears the cookie of every profile, so it ends every session those cookies name:
   * a session whose cookie is gone from the browser but alive in the store would still
   * answer to its token. Returns them with the route of each.
   */
  private async closeAll(req: IncomingMessage) {
    const closed: { route: ActiveRoute; session: SessionRecord; providerLogout: string | undefined }[] = [];
    const seen = new Set<string>();
    for (const route of this.routes) {
      const token = readCookie(req.headers.cookie, cookieOptions(route.profile, false).name);
      if (!token || seen.has(token)) continue;
      seen.add(token);
      const v = await this.engine.validate(token);
      if (!v.valid) continue;
      const mine = this.routes.find((r) => r.profileName === v.session.profile) ?? route;
      const providerLogout = await providerLogoutUrl(this.engine, v.session);
      await this.engine.close(v.session.id, 'logout');
      this.logger.info({ sessionId: v.session.id }, 'logout');
      closed.push({ route: mine, session: v.session, providerLogout });
    }
    return closed;
  }

  private async logon(req: IncomingMessage, res: ServerResponse, client: ClientFacts): Promise<void> {
    const found = await this.find(req, client);
    const stepUp = found?.session.state === 'allow' && stepUpPending(found.session);
    if (!found || (found.session.state !== 'inprogress' && !stepUp)) {
      // No policy in progress (expired, or already done): start over from the application.
      const landing = found?.session.variables['session.server.landinguri'] ?? '/';
      res.writeHead(302, {
        ...PAGE_HEADERS,
        location: landingLocation(landing, req.headers.host, this.routes),
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    const flow = browserFlow(req, res, client, found);
    let input: PolicyInput = {};
    if (req.method === 'POST') {
      if (!sameOrigin(req)) {
        return sendProblem(
          res,
          client.browser,
          403,
          'SG_ERR_ORIGIN_MISMATCH',
          'Refused',
          'This form must be sent from this site.',
        );
      }
      const body = await readSmallBody(req);
      if (body === undefined)
        return sendProblem(
          res,
          client.browser,
          400,
          'SG_ERR_BAD_REQUEST',
          'Bad request',
          'The form is too large.',
          {
            connection: 'close', // the rest of it is still on the connection, unread
          },
        );
      input = formInput(new URLSearchParams(body), found.session);
    }
    if (stepUp) return this.gateway.stepUp(flow, found.session, input);
    await this.runAndFinish(flow, found.session, input);
  }

  private async runAndFinish(flow: Flow, session: SessionRecord, input: PolicyInput): Promise<void> {
    const outcome = await this.gateway.runPolicy(flow, session, input);
    const current = flow.rotatedId ? ((await this.engine.get(flow.rotatedId)) ?? session) : session;
    await this.gateway.finish(flow, current, outcome);
  }

  /**
   * The identity provider sends the browser back here (`redirect_uri`): the query string is the
   * answer to the pending question that sent it there, for the plugin to check (state, code).
   */
  private async callback(req: IncomingMessage, res: ServerResponse, client: ClientFacts): Promise<void> {
    const found = await this.find(req, client);
    const pending = found?.session.state === 'inprogress' ? pendingQuestion(found.session) : undefined;
    if (!found || !pending?.redirect) {
      const again = '<p><a href="/">Start again</a></p>';
      return sendHtml(
        res,
        400,
        messagePage('Sign-in not in progress', 'This sign-in has expired or was already finished.', again),
        { 'cache-control': 'no-store' },
      );
    }
    const query = (req.url ?? '').split('?')[1] ?? '';
    const flow = browserFlow(req, res, client, found);
    await this.runAndFinish(flow, found.session, { answer: { key: pending.key, value: query } });
  }

  private async logout(req: IncomingMessage, res: ServerResponse, client: ClientFacts): Promise<void> {
    if (!sameOrigin(req)) {
      return sendProblem(
        res,
        client.browser,
        403,
        'SG_ERR_ORIGIN_MISMATCH',
        'Refused',
        'Log out from this site only.',
      );
    }
    const closed = await this.closeAll(req);
    const found = closed[0];
    const cookies = this.routes.map((r) => clearedCookie(cookieOptions(r.profile, client.proto === 'https')));
    // Signed in at an identity provider: its logout ends that session too, then comes back.
    const atProvider = client.browser ? closed.find((c) => c.providerLogout)?.providerLogout : undefined;
    const to = atProvider ?? found?.route.profile.logout_redirect;
    if (to) {
      res.writeHead(303, {
        ...PAGE_HEADERS,
        location: atProvider ?? configuredLocation(to),
        'set-cookie': [...new Set(cookies)],
      });
      res.end();
      return;
    }
    if (!client.browser) {
      res.writeHead(204, { ...PAGE_HEADERS, 'set-cookie': [...new Set(cookies)] });
      res.end();
      return;
    }
    sendHtml(res, 200, loggedOutPage(), { 'set-cookie': [...new Set(cookies)] });
  }
}

/** The flow of a gateway page's request (logon form, provider callback) on the found session's route. */
function browserFlow(
  req: IncomingMessage,
  res: ServerResponse,
  client: ClientFacts,
  found: { route: ActiveRoute; cookie: Flow['cookie'] },
): Flow {
  return {
    req,
    res,
    client: { ...client, browser: true },
    route: found.route,
    cookie: found.cookie,
    setCookies: [],
    http: { req, requestHeaders: {} },
  };
}

function formInput(form: URLSearchParams, session: SessionRecord): PolicyInput {
  const input: PolicyInput = {};
  const username = form.get('username');
  const password = form.get('password');
  if (username !== null && password !== null) input.credentials = { username: username.trim(), password };
  const answer = form.get('answer');
  const pending = pendingQuestion(session);
  // A question answered at an identity provider comes back through the callback only.
  if (answer !== null && pending && !pending.redirect && form.get('question') === pending.key) {
    input.answer = { key: pending.key, value: answer };
  }
  return input;
}

/** Where the identity provider sends the browser back (a plugin's `redirect_uri`). */
export const CALLBACK_PATH = '/sg/oidc/callback';

/** The question the session's policy waits on, if any. */
export function pendingQuestion(session: SessionRecord): { key: string; redirect?: string } | undefined {
  const text = session.variables['sessiongate.policy.question'];
  if (!text) return undefined;
  try {
    return JSON.parse(text) as { key: string; redirect?: string };
  } catch {
    return undefined;
  }
}
