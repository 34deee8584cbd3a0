import type { IncomingMessage } from 'node:http';
import { normalizeTarget } from './target.js';

/** A request the gateway takes: its normalized path (the url is rewritten to match). */
export interface AdmittedRequest {
  path: string;
  /** The path keeps an encoded `/` or `\`: only a route that allows it may take the request. */
  encodedSlash: boolean;
}

/**
 * The checks every request passes before any decision is made on it, and the one place its
 * target is normalized: afterwards `req.url` is the normalized origin-form target (what rules
 * see, what is stored as the landing URI, what is forwarded) and `req.headers.host` the
 * authority of an absolute-form target. A string is the reason for a 400; the connection must
 * then be closed, since a request with doubtful framing leaves the stream unreadable.
 *
 * @example
 * const admitted = admitRequest(req);
 * if (typeof admitted === 'string') return refuse(res, admitted); // 400, Connection: close
 * route = matchRoute(routes, req.headers.host ?? '', admitted.path);
 */
export function admitRequest(req: IncomingMessage): AdmittedRequest | string {
  const framing = framingProblem(req);
  if (framing) return framing;
  const target = normalizeTarget(req.url ?? '/');
  if (!target.ok) return target.reason;
  if (target.authority !== undefined) req.headers.host = target.authority;
  if (target.changed) req.url = target.path + target.query;
  return { path: target.path, encodedSlash: target.encodedSlash };
}

/**
 * Two Host headers (RFC 9112 §3.2: a server must answer 400) — Node keeps only the first, an
 * upstream might take the other; a Transfer-Encoding on HTTP/1.0, or one that is not exactly
 * `chunked` (RFC 9112 §6.1): proxies disagree on how such bodies end, the root of request
 * smuggling.
 */
function framingProblem(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return 'more than one Host header';
  }
  const te = req.headers['transfer-encoding'];
  if (te === undefined) return undefined;
  if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0)
    return 'Transfer-Encoding is not allowed in an HTTP/1.0 request';
  if (te.trim().toLowerCase() !== 'chunked') return 'the only Transfer-Encoding accepted is chunked';
  return undefined;
}
