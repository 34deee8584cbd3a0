import type { IncomingMessage, ServerResponse } from 'node:http';
import { readSmallBody } from './http/body.js';
import { LogoutTokenRefused, type BackchannelLogout } from './oidc-backchannel.js';

/** Where identity providers POST their logout tokens (registered at each provider). */
export const BACKCHANNEL_PATH = '/sg/oidc/backchannel-logout';

function answer(res: ServerResponse, status: number, body?: Record<string, string>): void {
  const text = body ? JSON.stringify(body) : '';
  res.writeHead(status, {
    'cache-control': 'no-store',
    ...(body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) } : {}),
  });
  res.end(text);
}

/**
 * `POST /sg/oidc/backchannel-logout` (OIDC Back-Channel Logout 1.0 §2.5, §2.8): a form with
 * `logout_token`; 200 when it was valid (the sessions it names closed, however many), 400 with
 * `invalid_request` and the reason otherwise. Server to server: no cookie, no same-origin check.
 */
export async function backchannelLogout(
  req: IncomingMessage,
  res: ServerResponse,
  logout: BackchannelLogout,
): Promise<void> {
  const body = await readSmallBody(req);
  if (body === undefined)
    return answer(res, 400, { error: 'invalid_request', error_description: 'the body is too large' });
  const token = new URLSearchParams(body).get('logout_token');
  if (!token) return answer(res, 400, { error: 'invalid_request', error_description: 'no logout_token' });
  try {
    await logout.logout(token);
    answer(res, 200);
  } catch (err) {
    if (!(err instanceof LogoutTokenRefused)) throw err;
    answer(res, 400, { error: 'invalid_request', error_description: err.message });
  }
}
