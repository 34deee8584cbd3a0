import type { ServerResponse } from 'node:http';
import type { PolicyOutcome } from './policy.js';
import { logonPage, questionPage, sendHtml, sendProblem } from './http/pages.js';

/** Answer a policy that needs input: a form for browsers, a 401 challenge for API clients. */
export function askForInput(
  res: ServerResponse,
  outcome: Extract<PolicyOutcome, { kind: 'logon' } | { kind: 'question' }>,
  o: { browser: boolean; realm: string; headers: Record<string, string | string[]> },
): void {
  const challenge = { 'www-authenticate': `Basic realm="${o.realm.replace(/["\\]/g, '')}"` };
  if (outcome.kind === 'logon') {
    if (o.browser) return sendHtml(res, 200, logonPage({ realm: o.realm, error: outcome.error }), o.headers);
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
