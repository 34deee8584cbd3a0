import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SessionGateError } from '../core/errors.js';

/**
 * The admin token from `path`; at the first start (no file) a new random token (256 bits,
 * base64url) is written there with mode 0600. Surrounding whitespace in the file is ignored.
 *
 * @example
 * ```ts
 * const token = loadOrCreateAdminToken('./var/admin.token');
 * ```
 */
export function loadOrCreateAdminToken(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw tokenFileError(path, err);
    const token = randomBytes(32).toString('base64url');
    try {
      mkdirSync(dirname(path), { recursive: true });
      // `wx`: never overwrite a token another process wrote a moment ago.
      writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
      return token;
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateAdminToken(path);
      throw tokenFileError(path, again);
    }
  }
  const token = text.trim();
  if (token.length < 16) {
    throw new SessionGateError(
      'SG_ERR_ADMIN_TOKEN',
      `admin token file ${path} is empty or shorter than 16 characters`,
    );
  }
  return token;
}

function tokenFileError(path: string, err: unknown): SessionGateError {
  const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  return new SessionGateError(
    'SG_ERR_ADMIN_TOKEN',
    `cannot read or create the admin token file ${path} (${code})`,
    {
      cause: err,
    },
  );
}

/**
 * Constant-time check of a presented secret: both sides are hashed first, so the comparison
 * runs on equal-length digests and leaks neither content nor length.
 */
export function secretMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
