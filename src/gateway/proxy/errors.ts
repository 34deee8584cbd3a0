// The outcome of Upstream.forward() / upgrade(), and how undici's errors map onto it.

import { SessionGateError } from '../../core/errors.js';

/**
 * The outcome of forward() / upgrade().
 *
 * - `ok: true`: the upstream's response was passed to the client (`status` is the upstream's;
 *   101 for an upgrade that is now tunnelled).
 * - `ok: false` with status 502/504: the upstream failed. If the client has not been sent anything
 *   (`res.headersSent` false; for upgrade(), the socket is still open), nothing has been written
 *   and the gateway renders its own error page (for upgrade(), a minimal HTTP response on the
 *   socket, then destroys it). If the response had started, the client connection has already
 *   been destroyed, which is the only way to tell the client the body is incomplete.
 * - `ok: false` with status 499 (`client_aborted`, nginx's convention; never sent): the client
 *   went away first; the upstream request was aborted and there is nobody to answer.
 *
 * `connect_failed`: no connection (refused, unresolvable, connect timeout, TLS failure).
 * `timeout`: headers timeout before the response (504), or body idle timeout after it started.
 * `reset`: the connection closed or failed after the request was sent.
 * `bad_response`: the upstream answered with something that is not valid HTTP, or the response
 * could not be passed on (an invalid header, a throwing `onResponse`).
 */
export type ForwardResult =
  /** `withheld`: the answer was read and dropped (ForwardOptions.withhold); nothing was sent. */
  | { ok: true; status: number; withheld?: boolean }
  | {
      ok: false;
      status: 502 | 504;
      reason: 'connect_failed' | 'timeout' | 'reset' | 'bad_response';
      message: string;
    }
  | { ok: false; status: 499; reason: 'client_aborted'; message: string };

export type ForwardFailure = Exclude<ForwardResult, { ok: true }>;

const CONNECT_ERROR_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
]);

/** The error the proxy aborts an upstream request with when its client has gone. */
export class ClientAbortedError extends SessionGateError {
  constructor() {
    super('SG_ERR_CLIENT_ABORTED', 'client closed the connection');
    this.name = 'ClientAbortedError';
  }
}

/** An upstream response the proxy cannot pass on. */
export class BadResponseError extends SessionGateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SG_ERR_UPSTREAM_BAD_RESPONSE', message, options);
    this.name = 'BadResponseError';
  }
}

/**
 * Maps an error from undici to a ForwardFailure. `connected`: the request had been handed to a
 * connection (undici only starts a request on an established socket).
 */
export function classifyError(err: unknown, connected: boolean): ForwardFailure {
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  if (err instanceof ClientAbortedError) return { ok: false, status: 499, reason: 'client_aborted', message };
  if (
    err instanceof BadResponseError ||
    e?.name === 'HTTPParserError' || // undici's parser errors carry no code
    code.startsWith('HPE_') ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
    code === 'UND_ERR_HEADERS_OVERFLOW' // response headers over undici's maxHeaderSize (16 KiB)
  )
    return { ok: false, status: 502, reason: 'bad_response', message };
  if (code === 'UND_ERR_SOCKET' && (message === 'bad response' || message === 'bad upgrade'))
    return { ok: false, status: 502, reason: 'bad_response', message };
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return { ok: false, status: 504, reason: 'timeout', message };
  if (CONNECT_ERROR_CODES.has(code) || code.startsWith('ERR_SSL_') || (!connected && code !== ''))
    return { ok: false, status: 502, reason: 'connect_failed', message };
  return { ok: false, status: 502, reason: 'reset', message };
}
