import type { ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import type { AuditSink } from '../core/audit.js';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import {
  hashPassword,
  MIN_PASSWORD_LENGTH,
  passwordProblem,
  verifyPassword,
} from '../plugins/builtin/password.js';
import { UsersFileEditor } from '../plugins/builtin/users-file.js';
import type { PluginSpec } from '../plugins/load.js';
import type { SessionEngine } from '../session/engine.js';
import type { ClientFacts } from './http/client.js';
import { sessionCookie, type SessionCookieOptions } from './http/cookies.js';
import { PAGE_HEADERS } from './http/pages.js';
import { answerThrottled } from './respond.js';
import type { ActiveRoute } from './router.js';
import type { LogonThrottle } from './throttle.js';
import { sendRefusal } from './user-pages-html.js';

/** The users file a profile's password lives in: its first authenticate step's `local-users` plugin. */
export interface PasswordFile {
  plugin: string;
  path: string;
  /** The plugin's `min_password_length`. */
  minLength: number;
}

/**
 * The users file of each routed profile whose policy checks the password with a built-in
 * `local-users` plugin (its first authenticate step: the one that checks the password; later
 * ones are second factors). A profile signed in elsewhere (LDAP, OpenID Connect) has none.
 *
 * @example
 * ```ts
 * const files = passwordFiles(routes, config.plugins, baseDir); // profile name -> users file
 * ```
 */
export function passwordFiles(
  routes: ActiveRoute[],
  plugins: PluginSpec[],
  baseDir: string,
): Map<string, PasswordFile> {
  const out = new Map<string, PasswordFile>();
  for (const route of routes) {
    const first = route.profile.policy.find((s) => typeof s === 'object' && 'authenticate' in s);
    const name =
      first && typeof first === 'object' && 'authenticate' in first ? first.authenticate : undefined;
    const spec = plugins.find((p) => p.name === name);
    const file = spec?.config.users_file;
    if (spec?.runtime !== 'builtin' || spec.type !== 'local-users' || typeof file !== 'string') continue;
    const min = spec.config.min_password_length;
    const minLength = typeof min === 'number' ? min : MIN_PASSWORD_LENGTH;
    out.set(route.profileName, { plugin: spec.name, path: resolve(baseDir, file), minLength });
  }
  return out;
}

/** The signed-in session a user page serves. */
export interface SignedIn {
  route: ActiveRoute;
  cookie: SessionCookieOptions;
  session: SessionRecord & { user: string };
}

export interface PasswordChangeOptions {
  engine: SessionEngine;
  audit: AuditSink;
  logger: Logger;
  throttle: LogonThrottle;
  failureDelayMs: (route: ActiveRoute) => number;
  files: Map<string, PasswordFile>;
}

/**
 * A user's own password change (`POST /sg/password`): the current password checked against
 * the users file under the logon throttle (a wrong one counts as a failed logon and waits the
 * failure delay), the same rules as `sessiongate users passwd`, the new hash written
 * atomically; then the user's other sessions end (`password_changed`, ASVS 3.3.3) and this
 * session gets a new token, so an old copy of its cookie is worth nothing.
 */
export class PasswordChange {
  constructor(private readonly o: PasswordChangeOptions) {}

  /** The shortest new password in this profile; undefined: no password change here. */
  minLength(profile: string): number | undefined {
    return this.o.files.get(profile)?.minLength;
  }

  async change(
    res: ServerResponse,
    client: ClientFacts,
    found: SignedIn,
    form: URLSearchParams,
  ): Promise<void> {
    const file = this.o.files.get(found.session.profile);
    const refuse = (status: number, code: string, message: string): void =>
      sendRefusal(res, client.browser, status, code, 'Password not changed', message);
    if (!file)
      return refuse(
        404,
        'SG_ERR_PASSWORD_CHANGE_UNAVAILABLE',
        'This sign-in has no password to change here.',
      );
    const current = form.get('current_password');
    const next = form.get('new_password');
    const again = form.get('new_password_again');
    if (current === null || next === null || again === null)
      return refuse(400, 'SG_ERR_BAD_REQUEST', 'Give the current password and the new one twice.');
    if (next !== again) return refuse(400, 'SG_ERR_PASSWORD_MISMATCH', 'The two new passwords differ.');
    const problem =
      passwordProblem(next) ??
      ([...next].length < file.minLength ? `at least ${file.minLength} characters` : undefined) ??
      (next === current ? 'it is the current password' : undefined);
    if (problem) return refuse(400, 'SG_ERR_PASSWORD_RULES', `The new password cannot be used: ${problem}.`);
    const { user } = found.session;
    if (!(await this.checkCurrent(res, client, found, file, current))) return;
    await this.write(file, user, next);
    await this.afterChange(res, client, found, file);
  }

  /**
   * The current password, checked under the logon throttle: a wrong one counts as a failed
   * logon of the user and waits the failure delay. False: refused (answered).
   */
  private async checkCurrent(
    res: ServerResponse,
    client: ClientFacts,
    found: SignedIn,
    file: PasswordFile,
    current: string,
  ): Promise<boolean> {
    const { user, id: sessionId } = found.session;
    const admitted = await this.o.throttle.admit(found.route.profile.logon_throttle, user, client.ip);
    if ('refused' in admitted) {
      const { scope, retryAfterSeconds } = admitted.refused;
      this.o.audit.write({
        event: 'logon_throttled',
        sessionId,
        user,
        clientIp: client.ip,
        scope,
        retryAfterSeconds,
      });
      answerThrottled(
        res,
        { kind: 'throttled', ...admitted.refused },
        { browser: client.browser, headers: {} },
      );
      return false;
    }
    let ok: boolean | undefined;
    try {
      const stored = UsersFileEditor.open(file.path).get(user);
      // verifyPassword does the full work without a stored hash too: no timing difference.
      ok = (await verifyPassword(current, stored?.password)) && stored !== undefined && !stored.disabled;
    } finally {
      // An unreadable users file is no guess: only a checked, wrong password stays counted.
      await this.o.throttle.settle(admitted.attempt, ok === false);
    }
    if (ok) return true;
    this.o.logger.info({ sessionId, user }, 'password change: wrong current password');
    const delay = this.o.failureDelayMs(found.route);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    sendRefusal(
      res,
      client.browser,
      403,
      'SG_ERR_WRONG_PASSWORD',
      'Password not changed',
      'The current password is wrong.',
    );
    return false;
  }

  /** The new hash, set and saved with no wait in between (one step for this process). */
  private async write(file: PasswordFile, user: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    const editor = UsersFileEditor.open(file.path);
    if (!editor.get(user)) throw new Error(`password change: ${user} is no longer in ${file.path}`);
    editor.set(user, { password: hash });
    editor.save();
  }

  private async afterChange(res: ServerResponse, client: ClientFacts, found: SignedIn, file: PasswordFile) {
    const { engine, audit } = this.o;
    const { session } = found;
    let ended = 0;
    for (const s of await engine.listByUser(session.user)) {
      if (s.id !== session.id && (await engine.close(s.id, 'password_changed'))) ended++;
    }
    const fresh = await engine.rotate(session.id);
    const base = { user: session.user, clientIp: client.ip };
    audit.write({ event: 'session_rotate', sessionId: session.id, newSessionId: fresh.id, ...base });
    audit.write({ event: 'password_changed', sessionId: fresh.id, ...base, plugin: file.plugin, ended });
    this.o.logger.info({ sessionId: fresh.id, user: session.user, ended }, 'password changed by its user');
    const cookie = sessionCookie(found.cookie, fresh.token);
    if (client.browser) {
      res.writeHead(303, {
        ...PAGE_HEADERS,
        location: '/sg/sessions?done=password',
        'set-cookie': cookie,
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    const body = `${JSON.stringify({ changed: true, ended })}\n`;
    res.writeHead(200, {
      ...PAGE_HEADERS,
      'content-type': 'application/json',
      'set-cookie': cookie,
      'cache-control': 'no-store',
    });
    res.end(body);
  }
}
