import type { ServerResponse } from 'node:http';
import type { SessionRecord } from '../core/session-types.js';
import type { Flow } from './flow.js';
import { sameOriginPath } from './http/location.js';
import { esc, messagePage, sendHtml, sendProblem } from './http/pages.js';
import type { PolicyOutcome } from './policy.js';
import { whenAgain } from './respond.js';
import type { LogonThrottle, ThrottleRefusal } from './throttle.js';

/** What a denial after failed logons tells the user: how many, where to start again, and when. */
export interface DeniedHelp {
  failedLogons: number;
  /** The page the logon began at (same-origin): visiting it starts a new logon. */
  again: string;
  /** The throttle refuses a new logon for this user or address until then. */
  blocked?: ThrottleRefusal;
}

/**
 * The help for a policy that ended in deny because too many logons failed in a row; undefined
 * for any other denial (a policy's `deny`, an authorize step), whose reason stands alone.
 *
 * @example
 * ```ts
 * const help = await deniedHelp(throttle, flow, session, outcome);
 * sendDenied(flow.res, flow.client.browser, outcome.reason, help, headers);
 * ```
 */
export async function deniedHelp(
  throttle: LogonThrottle,
  flow: Flow,
  session: SessionRecord | undefined,
  outcome: Extract<PolicyOutcome, { kind: 'deny' }>,
): Promise<DeniedHelp | undefined> {
  if (!outcome.failedLogons) return undefined;
  const again = sameOriginPath(session?.variables['session.server.landinguri'] ?? '/');
  const blocked =
    outcome.username === undefined
      ? undefined
      : await throttle.blocked(flow.route.profile.logon_throttle, outcome.username, flow.client.ip);
  return { failedLogons: outcome.failedLogons, again, ...(blocked ? { blocked } : {}) };
}

/**
 * Answer a denial: 403 SG_ERR_ACCESS_DENIED. After failed logons the page says so and offers a
 * new logon — at once, or from the time the throttle names (then also Retry-After).
 */
export function sendDenied(
  res: ServerResponse,
  browser: boolean,
  reason: string | undefined,
  help: DeniedHelp | undefined,
  headers: Record<string, string | string[]>,
): void {
  if (!help) {
    return sendProblem(
      res,
      browser,
      403,
      'SG_ERR_ACCESS_DENIED',
      'Access denied',
      reason ?? 'Access was denied.',
      headers,
    );
  }
  const what = `Logon failed ${help.failedLogons} times in a row, so this logon was ended.`;
  const link = `<a href="${esc(help.again)}">Start a new logon</a>`;
  if (!help.blocked) {
    const message = `${what} Start a new logon to try again.`;
    if (!browser)
      return sendProblem(res, false, 403, 'SG_ERR_ACCESS_DENIED', 'Access denied', message, headers);
    return sendHtml(res, 403, messagePage('Access denied', what, `<p>${link}</p>`), headers);
  }
  const { wait, at } = whenAgain(help.blocked);
  const later = `Too many failed logons for this account or from this address: a new logon can be tried in ${wait} (after ${at} UTC).`;
  const withRetry = { ...headers, 'retry-after': String(help.blocked.retryAfterSeconds) };
  if (!browser) {
    return sendProblem(
      res,
      false,
      403,
      'SG_ERR_ACCESS_DENIED',
      'Access denied',
      `${what} ${later}`,
      withRetry,
    );
  }
  const extra = `<p>${esc(later)}</p><p>${link} after ${esc(at)} UTC.</p>`;
  sendHtml(res, 403, messagePage('Access denied', what, extra), withRetry);
}
