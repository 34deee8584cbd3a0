import type { SessionRecord } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';

/**
 * The identity provider's logout URL for a session signed in through OpenID Connect
 * (RP-Initiated Logout 1.0): its `end_session_endpoint` with the ID token as `id_token_hint`,
 * the client id and the configured `post_logout_redirect_uri`. Read before the session is
 * closed (the ID token is a secure variable of it). Undefined for other sessions, or when the
 * provider has no such endpoint. The endpoint came from the provider's discovery document at
 * sign-in, never from the client.
 *
 * @example
 * ```ts
 * const to = await providerLogoutUrl(engine, session);
 * if (to) res.writeHead(303, { location: to });
 * ```
 */
export async function providerLogoutUrl(
  engine: SessionEngine,
  session: SessionRecord,
): Promise<string | undefined> {
  const endpoint = session.variables['session.oauth.end_session_endpoint'];
  if (!endpoint) return undefined;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  const idToken = await engine.data.get(session.id, 'session.oauth.id_token', { secure: true });
  if (idToken) url.searchParams.set('id_token_hint', idToken);
  const clientId = session.variables['session.oauth.client_id'];
  if (clientId) url.searchParams.set('client_id', clientId);
  const back = session.variables['session.oauth.post_logout_redirect_uri'];
  if (back) url.searchParams.set('post_logout_redirect_uri', back);
  return url.href;
}
