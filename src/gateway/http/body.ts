import type { IncomingMessage } from 'node:http';

/** Read a small request body (gateway forms); undefined when it is larger than `limit` bytes. */
export async function readSmallBody(req: IncomingMessage, limit = 16_384): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** HTTP Basic credentials of a request, if any. */
export function basicCredentials(req: IncomingMessage): { username: string; password: string } | undefined {
  const h = req.headers.authorization;
  if (!h || !/^basic /i.test(h)) return undefined;
  const decoded = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Same-origin check for gateway forms: the Origin (or, without it, the Referer) must name the
 * host the request was sent to. A page sent with `Referrer-Policy: no-referrer` (every gateway
 * page) makes Chromium post its forms with `Origin: null` and no Referer; then the browser's
 * own `Sec-Fetch-Site: same-origin` vouches for it — a header no page can set, and which
 * another site's form (or a sandboxed frame) always gets as `cross-site` or `none`.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const host = req.headers.host;
  const source = req.headers.origin ?? req.headers.referer;
  if (!host) return false;
  if (!source || source === 'null') return req.headers['sec-fetch-site'] === 'same-origin';
  try {
    return new URL(source).host === host;
  } catch {
    return false;
  }
}
