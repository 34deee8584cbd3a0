import type { ServerResponse } from 'node:http';
import type { ActiveRoute } from '../router.js';

const NO_KEYS = '{"keys":[]}';

/**
 * `GET /sg/.well-known/jwks.json`: the public keys that verify `X-Sessiongate-Assertion`
 * (the active signing key and every older one still in the key ring). Public by design; a
 * verifier caches it and fetches again when an assertion names a key id it does not know.
 *
 * @example
 * if (path === JWKS_PATH) return sendJwks(res, routes);
 */
export function sendJwks(res: ServerResponse, routes: readonly ActiveRoute[]): void {
  const body = routes[0]?.identity.keys.jwks ?? NO_KEYS;
  res.writeHead(200, {
    'content-type': 'application/jwk-set+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'public, max-age=300',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}
