import type { ServerResponse } from 'node:http';
import { messagePage, sendHtml, sendProblem } from './http/pages.js';

/**
 * `GET /sg/logout`, what a plain "Log out" link in an application asks for. Logging out is a
 * change, so it takes a POST (another site's link or image cannot end the session); a browser
 * gets a page with the button that sends it, an API client a 405 that says to POST.
 *
 * @example
 * ```ts
 * if (path === '/sg/logout' && req.method === 'GET') return logoutPrompt(res, client.browser);
 * ```
 */
export function logoutPrompt(res: ServerResponse, browser: boolean): void {
  if (!browser) {
    return sendProblem(
      res,
      false,
      405,
      'SG_ERR_METHOD_NOT_ALLOWED',
      'Log out',
      'Log out with POST /sg/logout (with the session cookie).',
      { allow: 'POST' },
    );
  }
  const form =
    '<form method="post" action="/sg/logout"><button type="submit">Log out</button></form>' +
    '<p><a href="/">Stay logged on</a></p>';
  sendHtml(res, 200, messagePage('Log out', 'Log out of this site? Your session ends.', form));
}
