import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { ERROR_CODES, SessionGateError, type ErrorCode } from '../core/errors.js';

/** Headers on every answer of the admin listener. */
export const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-resource-policy': 'same-origin',
};

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'cache-control': 'no-store', ...headers });
  res.end();
}

/** `{ "error": { "code", "message" } }` with the catalogue's status for the code. */
export function sendError(
  res: ServerResponse,
  code: ErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  sendJson(res, ERROR_CODES[code].status, { error: { code, message } }, headers);
}

export function invalid(field: string, message: string): SessionGateError {
  return new SessionGateError('SG_ERR_INVALID_REQUEST', `${field}: ${message}`);
}

const MAX_BODY = 64 * 1024;

/** The request body as JSON (an empty body is `{}`); 400 naming `body` when it is not JSON. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw invalid('body', `larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  const type = req.headers['content-type'] ?? 'application/json';
  if (!/^application\/json\b/i.test(type)) throw invalid('body', 'expected Content-Type: application/json');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw invalid('body', 'not valid JSON');
  }
}

/** Check a value against a zod schema; the first problem becomes a 400 naming its field. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, what = 'body'): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    throw invalid([...path, issue.keys[0] ?? '?'].join('.'), 'unknown field');
  }
  throw invalid(path.length > 0 ? path.join('.') : what, issue.message);
}
