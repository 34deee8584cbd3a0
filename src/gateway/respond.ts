import type { ServerResponse } from 'node:http';
import type { PolicyOutcome } from './policy.js';
import { enrolView } from './http/enrol-view.js';
import {
  esc,
  logonPage,
  messagePage,
  PAGE_HEADERS,
  questionPage,
  sendHtml,
  sendProblem,
} from './http/pages.js';

/**
 * Answer a policy that needs input: a form for browsers, a 401 challenge for API clients. A
 * question that enrols a second factor is a page with its QR code for browsers, and refused
 * for API clients (SG_ERR_ENROLMENT_NEEDS_BROWSER): they could never answer it.
 */
export function askForInput(
  res: ServerResponse,
  outcome: Extract<PolicyOutcome, { kind: 'logon' } | { kind: 'question' }>,
  o: { browser: boolean; realm: string; headers: Record<string, string | string[]> },
): void | Promise<void> {
  const challenge = { 'www-authenticate': `Basic realm="${o.realm.replace(/["\\]/g, '')}"` };
  if (outcome.kind === 'logon') {
    if (o.browser) {
      const page = logonPage({ realm: o.realm, error: outcome.error, username: outcome.username });
      return sendHtml(res, 200, page, o.headers);
    }
    return sendProblem(
      res,
      false,
      401,
      outcome.error ? 'SG_ERR_LOGON_FAILED' : 'SG_ERR_LOGON_REQUIRED',
      'Logon required',
      outcome.error ?? 'Send credentials with HTTP Basic authentication.',
      { ...o.headers, ...challenge },
    );
  }
  if (outcome.redirect) return signInElsewhere(res, outcome.redirect, o);
  if (outcome.otpauth !== undefined) return askToEnrol(res, outcome, outcome.otpauth, o);
  if (o.browser) return sendHtml(res, 200, questionPage(outcome), o.headers);
  sendProblem(
    res,
    false,
    401,
    'SG_ERR_NEEDINFO',
    'More information needed',
    `${outcome.error ? `${outcome.error}. ` : ''}${outcome.prompt}: send the answer in the X-Sessiongate-Answer header, with the session cookie`,
    { ...o.headers, ...challenge },
  );
}

async function askToEnrol(
  res: ServerResponse,
  outcome: Extract<PolicyOutcome, { kind: 'question' }>,
  otpauth: string,
  o: { browser: boolean; headers: Record<string, string | string[]> },
): Promise<void> {
  if (!o.browser) {
    return sendProblem(
      res,
      false,
      403,
      'SG_ERR_ENROLMENT_NEEDS_BROWSER',
      'Enrolment needs a browser',
      'This account has no second factor yet: log on once with a browser to set one up.',
      o.headers,
    );
  }
  sendHtml(res, 200, questionPage({ ...outcome, enrol: await enrolView(otpauth) }), o.headers);
}

/**
 * A question answered at an identity provider: browsers are sent there (the one redirect that
 * leaves the site, to the URL the plugin built from its configured provider); API clients are
 * told to sign in with a browser.
 */
function signInElsewhere(
  res: ServerResponse,
  url: string,
  o: { browser: boolean; headers: Record<string, string | string[]> },
): void {
  if (o.browser) {
    res.writeHead(302, { ...PAGE_HEADERS, ...o.headers, location: url, 'cache-control': 'no-store' });
    res.end();
    return;
  }
  sendProblem(
    res,
    false,
    401,
    'SG_ERR_LOGON_REQUIRED',
    'Logon required',
    'This logon goes through an identity provider: sign in with a browser.',
    o.headers,
  );
}

/**
 * Answer a logon the throttle refused: 429 with Retry-After; browsers get a page that says
 * when to try again, API clients SG_ERR_LOGON_THROTTLED. The session stays as it was.
 */
export function answerThrottled(
  res: ServerResponse,
  outcome: Extract<PolicyOutcome, { kind: 'throttled' }>,
  o: { browser: boolean; headers: Record<string, string | string[]> },
): void {
  const { wait, at } = whenAgain(outcome);
  const message = `Too many failed logons for this account or from this address. Try again in ${wait} (after ${at} UTC).`;
  const headers = { ...o.headers, 'retry-after': String(outcome.retryAfterSeconds) };
  if (!o.browser) {
    return sendProblem(res, false, 429, 'SG_ERR_LOGON_THROTTLED', 'Too many failed logons', message, headers);
  }
  const again = `<p><a href="/sg/logon">Try again</a> after ${esc(at)} UTC.</p>`;
  sendHtml(res, 429, messagePage('Too many failed logons', message, again), headers);
}

/**
 * When a throttled logon can be tried again, in words: how long to wait, and the UTC time (the
 * gateway's pages run no script, so they cannot show the reader's local time).
 *
 * @example
 * ```ts
 * whenAgain({ retryAfterSeconds: 900, until: Date.parse('2026-01-01T10:15:00Z') });
 * // { wait: '15 minutes', at: '10:15' }
 * ```
 */
export function whenAgain(o: { retryAfterSeconds: number; until: number }): { wait: string; at: string } {
  const minutes = Math.ceil(o.retryAfterSeconds / 60);
  const wait = o.retryAfterSeconds < 60 ? `${o.retryAfterSeconds} seconds` : plural(minutes, 'minute');
  return { wait, at: new Date(o.until).toISOString().slice(11, 16) };
}

function plural(n: number, unit: string): string {
  return `${n} ${unit}${n === 1 ? '' : 's'}`;
}
