import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** scrypt parameters of new hashes: N=2^15, r=8, p=1 (32 MiB, ~100 ms on this machine). */
export const DEFAULT_SCRYPT = { N: 2 ** 15, r: 8, p: 1 } as const;

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

const SALT_BYTES = 16;
const KEY_BYTES = 32;
const HASH_RE = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{16,})$/;

function derive(password: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    // Node's default limit (32 MiB) is exactly 128*N*r for N=2^15, r=8: leave headroom.
    maxmem: 256 * params.N * params.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, options, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Limits that keep a hand-edited file from asking for gigabytes or minutes per check. */
function checkParams(p: ScryptParams): boolean {
  const powerOfTwo = p.N > 1 && (p.N & (p.N - 1)) === 0;
  return powerOfTwo && p.N <= 2 ** 20 && p.r >= 1 && p.r <= 32 && p.p >= 1 && p.p <= 16;
}

/**
 * Hash a password for the users file: `scrypt$N$r$p$salt$hash` (salt and hash base64url,
 * a random 16-byte salt per hash, a 32-byte key).
 *
 * @example
 * ```ts
 * const stored = await hashPassword('correct horse'); // 'scrypt$32768$8$1$...$...'
 * await verifyPassword('correct horse', stored); // true
 * ```
 */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  if (!checkParams(params)) throw new Error('scrypt parameters out of range');
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params, KEY_BYTES);
  return ['scrypt', params.N, params.r, params.p, salt.toString('base64url'), key.toString('base64url')].join(
    '$',
  );
}

/** True when `stored` has the form `hashPassword` writes (with sane parameters). */
export function isPasswordHash(stored: string): boolean {
  const m = HASH_RE.exec(stored);
  return m !== null && checkParams({ N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) });
}

// A fixed hash to check against when the user is unknown, so that an unknown user costs the
// same scrypt work as a known one (no timing oracle for user names).
const DUMMY_SALT = Buffer.alloc(SALT_BYTES, 0x5a);
const DUMMY_HASH = `scrypt$${DEFAULT_SCRYPT.N}$${DEFAULT_SCRYPT.r}$${DEFAULT_SCRYPT.p}$${DUMMY_SALT.toString('base64url')}$${Buffer.alloc(KEY_BYTES).toString('base64url')}`;

/**
 * Check a password against a stored hash in constant time. A missing or malformed hash does
 * the same work against a dummy hash and returns false.
 */
export async function verifyPassword(password: string, stored: string | undefined): Promise<boolean> {
  const m = stored === undefined ? null : HASH_RE.exec(stored);
  const params = m ? { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) } : undefined;
  const valid = m !== null && params !== undefined && checkParams(params);
  const [, n, r, p, salt, hash] = valid ? m : HASH_RE.exec(DUMMY_HASH)!;
  const expected = Buffer.from(hash!, 'base64url');
  const key = await derive(
    password,
    Buffer.from(salt!, 'base64url'),
    {
      N: Number(n),
      r: Number(r),
      p: Number(p),
    },
    expected.length,
  );
  return timingSafeEqual(key, expected) && valid;
}

/** A random password for `sessiongate users add` without `--password-stdin` (24 characters). */
export function generatePassword(): string {
  return randomBytes(18).toString('base64url');
}

/** The shortest password a user may choose for themselves by default (ASVS 2.1.1). */
export const MIN_PASSWORD_LENGTH = 12;

/** The longest password accepted for a new hash (characters). */
export const MAX_PASSWORD_LENGTH = 1024;

/**
 * What is wrong with a new password, if anything: the rules of `sessiongate users` and of the
 * gateway's password change alike. Not empty; one line (a line break would come from a paste or
 * a file, not from the user's intent); at most MAX_PASSWORD_LENGTH characters.
 *
 * @example
 * ```ts
 * passwordProblem(''); // 'the password is empty'
 * ```
 */
export function passwordProblem(password: string): string | undefined {
  if (password === '') return 'the password is empty';
  if (/[\r\n]/.test(password)) return 'give one line';
  if (password.length > MAX_PASSWORD_LENGTH) return `at most ${MAX_PASSWORD_LENGTH} characters`;
  return undefined;
}
