import type { IncomingMessage } from 'node:http';

/**
 * Read a small request body (gateway forms); undefined when it is larger than `limit` bytes.
 * Then the rest of the body stays unread on the connection: the caller must answer with
 * `Connection: close`, or the connection's next request would wait behind it.
 *
 * @example
 * const body = await readSmallBody(req);
 * if (body === undefined) return sendProblem(res, true, 400, ..., { connection: 'close' });
 */
export function readSmallBody(req: IncomingMessage, limit = 16_384): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) return void chunks.push(chunk);
      stop();
      req.pause();
      resolve(undefined);
    };
    const onEnd = (): void => {
      stop();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (err: Error): void => {
      stop();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
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
