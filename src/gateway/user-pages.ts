import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { noAudit, type AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';
import type { PluginSpec } from '../plugins/load.js';
import type { SessionEngine } from '../session/engine.js';
import type { Keyring } from '../session/keyring.js';
import { readSmallBody, sameOrigin } from './http/body.js';
import type { ClientFacts } from './http/client.js';
import { clearedCookie, readCookie } from './http/cookies.js';
import { loggedOutPage, PAGE_HEADERS, sendHtml, sendProblem } from './http/pages.js';
import { PasswordChange, passwordFiles, type SignedIn } from './password-change.js';
import { cookieOptions, type ActiveRoute } from './router.js';
import { LogonThrottle } from './throttle.js';
import { DONE_NOTICES, sendRefusal, sessionsPage } from './user-pages-html.js';
import { endOtherSessions, endOwnSession, userSessions, type Actor } from './user-sessions.js';

export interface UserPagesOptions {
  engine: SessionEngine;
  routes: ActiveRoute[];
  /** Its MAC key binds each page's form token to the session that loaded the page. */
  keyring: Keyring;
  logger: Logger;
  audit?: AuditSink | undefined;
  /** Milliseconds to hold back the answer to a wrong current password; default: as a failed logon's. */
  failureDelayMs?: ((route: ActiveRoute) => number) | undefined;
  /** The gateway's plugins and the folder their relative paths start from (users files). */
  plugins: PluginSpec[];
  baseDir: string;
}

const SESSIONS = '/sg/sessions';
const SESSIONS_JSON = '/sg/sessions.json';
const END = '/sg/sessions/end';
const END_OTHERS = '/sg/sessions/end-others';
const PASSWORD = '/sg/password';
const PATHS = new Set([SESSIONS, SESSIONS_JSON, END, END_OTHERS, PASSWORD]);

/**
 * A signed-in user's own pages (docs/user-pages.md, ASVS 3.3.4): their live sessions in every
 * profile, HTTP and SSH, with buttons to end one or all others, and the password change of
 * `local-users` users. Every form is POST, same-origin, and carries a token bound to the
 * session that loaded the page (a MAC of its id), so another site can neither post it nor
 * replay one; only the user's own sessions can be ended, and another user's session id is
 * answered as a session that does not exist.
 *
 * @example
 * ```ts
 * const pages = new UserPages({ engine, routes, keyring, logger, failureDelayMs, plugins, baseDir });
 * if (pages.owns(path)) return pages.handle(req, res, client, path);
 * ```
 */
export class UserPages {
  private readonly audit: AuditSink;
  private readonly password: PasswordChange;

  constructor(private readonly o: UserPagesOptions) {
    this.audit = o.audit ?? noAudit;
    this.password = new PasswordChange({
      engine: o.engine,
      audit: this.audit,
      logger: o.logger,
      throttle: new LogonThrottle(o.engine.store, o.engine.clock),
      failureDelayMs: o.failureDelayMs ?? profileFailureDelay,
      files: passwordFiles(o.routes, o.plugins, o.baseDir),
    });
  }

  owns(path: string): boolean {
    return PATHS.has(path);
  }

  async handle(req: IncomingMessage, res: ServerResponse, client: ClientFacts, path: string): Promise<void> {
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && (path === SESSIONS || path === SESSIONS_JSON)) {
      return this.show(req, res, path === SESSIONS_JSON ? { ...client, browser: false } : client);
    }
    if (req.method !== 'POST' || path === SESSIONS || path === SESSIONS_JSON) {
      const allow = path === SESSIONS || path === SESSIONS_JSON ? 'GET, HEAD' : 'POST';
      return sendRefusal(res, client.browser, 405, 'SG_ERR_BAD_REQUEST', 'Not allowed', `Use ${allow}.`, {
        allow,
      });
    }
    const posted = await this.form(req, res, client);
    if (!posted) return;
    const { found, form } = posted;
    if (path === PASSWORD) return this.password.change(res, client, found, form);
    const actor: Actor = { session: found.session, clientIp: client.ip };
    if (path === END_OTHERS) {
      const ended = await endOtherSessions(this.o.engine, this.audit, actor);
      return this.done(res, client, 'ended-others', { ended });
    }
    const id = form.get('id');
    if (!(await endOwnSession(this.o.engine, this.audit, actor, id))) {
      return sendRefusal(
        res,
        client.browser,
        404,
        'SG_ERR_SESSION_NOT_FOUND',
        'Not found',
        'You have no such session.',
      );
    }
    if (id !== found.session.id) return this.done(res, client, 'ended', { ended: 1 });
    // Their own session: as a logout, the cookie goes too.
    const cleared = { 'set-cookie': clearedCookie(found.cookie) };
    if (client.browser) return sendHtml(res, 200, loggedOutPage(), cleared);
    return sendJson(res, 200, { ended: 1 }, cleared);
  }

  /** The page (browsers) or its JSON (API clients, and `/sg/sessions.json`). */
  private async show(req: IncomingMessage, res: ServerResponse, client: ClientFacts): Promise<void> {
    const found = await this.signedIn(req, client);
    if (!found) return notSignedIn(res, client);
    const sessions = await userSessions(this.o.engine, found.session.user, found.session.id);
    const csrf = this.csrf(found.session.id);
    const passwordMinLength = this.password.minLength(found.session.profile);
    if (!client.browser) {
      return sendJson(res, 200, {
        user: found.session.user,
        csrf,
        password_change: passwordMinLength !== undefined,
        ...(passwordMinLength === undefined ? {} : { password_min_length: passwordMinLength }),
        sessions,
      });
    }
    const done = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('done') ?? '';
    const notice = Object.hasOwn(DONE_NOTICES, done) ? DONE_NOTICES[done] : undefined;
    sendHtml(res, 200, sessionsPage({ user: found.session.user, csrf, sessions, notice, passwordMinLength }));
  }

  /**
   * A posted form, checked in this order: the same-origin check (as logout's), the signed-in
   * session, a small body, and the form token of that session. undefined: already answered.
   */
  private async form(
    req: IncomingMessage,
    res: ServerResponse,
    client: ClientFacts,
  ): Promise<{ found: SignedIn; form: URLSearchParams } | undefined> {
    if (!sameOrigin(req)) {
      sendRefusal(
        res,
        client.browser,
        403,
        'SG_ERR_ORIGIN_MISMATCH',
        'Refused',
        'This form must be sent from this site.',
      );
      return undefined;
    }
    const found = await this.signedIn(req, client);
    if (!found) return void notSignedIn(res, client);
    const body = await readSmallBody(req);
    if (body === undefined) {
      sendRefusal(res, client.browser, 400, 'SG_ERR_BAD_REQUEST', 'Bad request', 'The form is too large.', {
        connection: 'close', // the rest of it is still on the connection, unread
      });
      return undefined;
    }
    const form = new URLSearchParams(body);
    if (!this.csrfMatches(found.session.id, form.get('csrf'))) {
      this.o.logger.info({ sessionId: found.session.id }, 'user page form without its session token');
      const message =
        'This form is out of date or was not sent from your page. Reload the page and try again.';
      sendRefusal(res, client.browser, 403, 'SG_ERR_CSRF_TOKEN', 'Refused', message);
      return undefined;
    }
    return { found, form };
  }

  /** The form token of the session: a MAC of its id (a rotated session gets a new one). */
  private csrf(sessionId: string): string {
    return this.o.keyring.mac('user-pages-csrf', sessionId);
  }

  private csrfMatches(sessionId: string, given: string | null): boolean {
    const expected = Buffer.from(this.csrf(sessionId));
    const actual = Buffer.from(given ?? '');
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  /**
   * The allowed session of a user that this request's cookie names, in the first profile whose
   * cookie holds one (as GatewayUris.find, counting as activity).
   */
  private async signedIn(req: IncomingMessage, client: ClientFacts): Promise<SignedIn | undefined> {
    const tried = new Set<string>();
    for (const route of this.o.routes) {
      const cookie = cookieOptions(route.profile, client.proto === 'https');
      const token = readCookie(req.headers.cookie, cookie.name);
      if (!token || tried.has(`${cookie.name}=${token}`)) continue;
      tried.add(`${cookie.name}=${token}`);
      const v = await this.o.engine.validate(token);
      if (!v.valid || v.session.state !== 'allow' || v.session.profile !== route.profileName) continue;
      const { user } = v.session;
      if (user !== null) return { route, cookie, session: { ...v.session, user } };
    }
    return undefined;
  }

  /** After a change: browsers go back to the page (POST, redirect, GET), API clients get JSON. */
  private done(res: ServerResponse, client: ClientFacts, notice: string, json: object): void {
    if (!client.browser) return sendJson(res, 200, json);
    res.writeHead(303, {
      ...PAGE_HEADERS,
      location: `${SESSIONS}?done=${notice}`,
      'cache-control': 'no-store',
    });
    res.end();
  }
}

/** A random time in the profile's `failure_delay_ms`, as the gateway waits after a failed logon. */
function profileFailureDelay(route: ActiveRoute): number {
  const { min, max } = route.profile.failure_delay_ms;
  return min + Math.floor(Math.random() * (max - min + 1));
}

function notSignedIn(res: ServerResponse, client: ClientFacts): void {
  const message = 'Log on to an application behind this gateway first, then come back.';
  sendProblem(res, client.browser, 401, 'SG_ERR_NOT_SIGNED_IN', 'Not signed in', message);
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(status, {
    ...PAGE_HEADERS,
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
