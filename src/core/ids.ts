import { hash, randomBytes } from 'node:crypto';
import { SessionGateError } from './errors.js';

/** The secret a client holds (cookie value). Never stored, never logged. */
export type SessionToken = string & { readonly __brand: 'SessionToken' };
/** The public handle of a session: a hash of its token. Safe for logs, admin API and stores. */
export type SessionId = string & { readonly __brand: 'SessionId' };

const TOKEN_BYTES = 32; // 256 bits
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const ID_RE = /^[0-9a-f]{32}$/;

/**
 * A new token from the CSPRNG and the id derived from it.
 *
 * @example
 * ```ts
 * const { token, id } = newToken(); // token -> cookie, id -> store and logs
 * ```
 */
export function newToken(): { token: SessionToken; id: SessionId } {
  const token = randomBytes(TOKEN_BYTES).toString('base64url') as SessionToken;
  // Hex of the first 16 bytes, not a slice of the full hex: this id is stored with the session,
  // and a sliced string would keep its 64-character parent alive as long as the session lives.
  return { token, id: hash('sha256', token, 'buffer').toString('hex', 0, 16) as SessionId };
}

/**
 * The id of a token: the first 128 bits of its SHA-256, as 32 hex characters. For lookups on
 * the request path: a slice of the full hex (a third of the cost of going through a Buffer),
 * which shares its parent's memory, so not for ids kept long (newToken makes those).
 */
export function idOfToken(token: SessionToken): SessionId {
  return hash('sha256', token, 'hex').slice(0, 32) as SessionId;
}

export function isToken(value: unknown): value is SessionToken {
  return typeof value === 'string' && TOKEN_RE.test(value);
}

export function isSessionId(value: unknown): value is SessionId {
  return typeof value === 'string' && ID_RE.test(value);
}

/** Accept a client-supplied token, refusing anything shaped like an id (ids appear in logs). */
export function parseToken(value: unknown): SessionToken {
  if (!isToken(value)) {
    throw new SessionGateError(
      'SG_ERR_INVALID_TOKEN',
      isSessionId(value)
        ? 'expected a session token but got a session id; ids are not accepted where a token is required'
        : 'malformed session token (expected 43 base64url characters)',
    );
  }
  return value;
}

/** Accept an admin-supplied session id, refusing anything shaped like a token. */
export function parseSessionId(value: unknown): SessionId {
  if (!isSessionId(value)) {
    throw new SessionGateError(
      'SG_ERR_INVALID_SESSION_ID',
      isToken(value)
        ? 'expected a session id but got a session token; pass the id (32 hex characters)'
        : 'malformed session id (expected 32 hex characters)', // the value itself may be a secret typo
    );
  }
  return value;
}
