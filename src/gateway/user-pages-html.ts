import type { ServerResponse } from 'node:http';
import { esc, messagePage, sendHtml, sendProblem } from './http/pages.js';
import type { UserSessionView } from './user-sessions.js';

/** What a finished action says on the page it redirects to (`?done=`): fixed texts, never echoed. */
export const DONE_NOTICES: Readonly<Record<string, string>> = Object.freeze({
  ended: 'The session was ended.',
  'ended-others': 'Your other sessions were ended.',
  password: 'Your password was changed. Your other sessions were ended.',
});

/**
 * A time for people: UTC text in a `<time>` element whose `datetime` carries the exact instant.
 * The gateway's pages run no script (their Content-Security-Policy allows none), so the time
 * is not turned into the reader's local time; the `title` repeats it in full on hover.
 */
function time(iso: string): string {
  const text = `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
  return `<time datetime="${esc(iso)}" title="${esc(iso)}">${esc(text)}</time>`;
}

function where(s: UserSessionView): string {
  const how = s.protocol === 'ssh' ? `SSH to ${s.ssh_target ?? 'a target'}` : 'Web';
  const from = s.client_ip ? ` from ${s.client_ip}` : '';
  return esc(`${how}${from} · profile ${s.profile}`);
}

function hidden(name: string, value: string): string {
  return `<input type="hidden" name="${esc(name)}" value="${esc(value)}">`;
}

function sessionItem(s: UserSessionView, csrf: string): string {
  const label = s.current ? '<p><strong>This session</strong></p>' : '';
  const end = s.current
    ? ''
    : `<form method="post" action="/sg/sessions/end">${hidden('csrf', csrf)}${hidden('id', s.id)}` +
      `<button type="submit">End session ${esc(s.short_id)}</button></form>`;
  return `<li${s.current ? ' class="current" aria-current="true"' : ''}>${label}
<p>${esc(s.device || 'Unknown device')}</p>
<p>${where(s)}</p>
<p>Started ${time(s.started)}, last active ${time(s.last_activity)}</p>
<p>Session <code>${esc(s.short_id)}</code></p>${end}</li>`;
}

function passwordForm(csrf: string, minLength: number): string {
  return `<h2>Change your password</h2>
<form method="post" action="/sg/password">${hidden('csrf', csrf)}
<label>Current password <input name="current_password" type="password" autocomplete="current-password" required></label>
<label>New password (at least ${minLength} characters) <input name="new_password" type="password" autocomplete="new-password" minlength="${minLength}" required></label>
<label>New password again <input name="new_password_again" type="password" autocomplete="new-password" minlength="${minLength}" required></label>
<button type="submit">Change password</button></form>`;
}

/**
 * The signed-in user's page: each live session (this one marked), buttons to end one or all
 * others, log out, and — for users of a `local-users` plugin — the password change form.
 */
export function sessionsPage(o: {
  user: string;
  csrf: string;
  sessions: UserSessionView[];
  notice?: string | undefined;
  /** The shortest new password, when this user can change their password here. */
  passwordMinLength: number | undefined;
}): string {
  const notice = o.notice ? `<p role="status">${esc(o.notice)}</p>` : '';
  const others = o.sessions.some((s) => !s.current)
    ? `<form method="post" action="/sg/sessions/end-others">${hidden('csrf', o.csrf)}` +
      '<button type="submit">End all other sessions</button></form>'
    : '';
  const logout = '<form method="post" action="/sg/logout"><button type="submit">Log out</button></form>';
  const list = `<ul class="sessions">${o.sessions.map((s) => sessionItem(s, o.csrf)).join('\n')}</ul>`;
  const password = o.passwordMinLength === undefined ? '' : passwordForm(o.csrf, o.passwordMinLength);
  return messagePage(
    'Your sessions',
    `Signed in as ${o.user}.`,
    `${notice}\n${list}\n<div class="actions">${others}\n${logout}</div>\n${password}`,
  );
}

/**
 * A refused user page request: a page with the way back for browsers, `{ error: { code,
 * message } }` for API clients.
 */
export function sendRefusal(
  res: ServerResponse,
  browser: boolean,
  status: number,
  code: string,
  title: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (!browser) return sendProblem(res, false, status, code, title, message, headers);
  const back = '<p><a href="/sg/sessions">Back to your sessions</a></p>';
  sendHtml(res, status, messagePage(title, message, back), headers);
}
