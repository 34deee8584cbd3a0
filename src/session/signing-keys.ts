import { createPrivateKey, generateKeyPairSync, randomBytes, type JsonWebKey } from 'node:crypto';
import { SessionGateError } from '../core/errors.js';

/** The one signature algorithm of the key ring's signing keys (ECDSA P-256, SHA-256). */
export const SIGNING_ALG = 'ES256';

/** A signing key as the key ring file stores it: the private key as a JWK. */
export interface SigningKeyEntry {
  id: string;
  alg: typeof SIGNING_ALG;
  jwk: JsonWebKey;
  created: string;
}

/** A loaded signing key: the private JWK to sign with and the public one to publish. */
export interface SigningKey {
  readonly id: string;
  readonly alg: typeof SIGNING_ALG;
  readonly created: string;
  readonly privateJwk: JsonWebKey;
  /** kty, crv, x, y with kid, alg and use: what `/sg/.well-known/jwks.json` lists. */
  readonly publicJwk: Readonly<Record<string, string>>;
}

/** The key ring's signing keys: the one new assertions are signed with, and every published one. */
export interface SigningKeys {
  readonly active: SigningKey | undefined;
  readonly keys: readonly SigningKey[];
}

export const NO_SIGNING_KEYS: SigningKeys = Object.freeze({ active: undefined, keys: Object.freeze([]) });

/**
 * A fresh P-256 key pair for the file. Made with node:crypto (synchronous, no JOSE library in
 * this layer); the gateway signs with it through `jose`.
 *
 * @example
 * file.signing.keys.push(newSigningKey());
 */
export function newSigningKey(now = new Date()): SigningKeyEntry {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  const id = `s${now.getTime().toString(36)}${randomBytes(3).toString('hex')}`;
  return { id, alg: SIGNING_ALG, jwk, created: now.toISOString() };
}

/**
 * The `signing` part of a key ring file ({active, keys: [...]}), checked: every key must be a
 * usable P-256 private key, and the active one must be among them. Absent: no signing keys.
 *
 * @example
 * parseSigningKeys(undefined, path); // NO_SIGNING_KEYS
 */
export function parseSigningKeys(value: unknown, path: string): SigningKeys {
  if (value === undefined) return NO_SIGNING_KEYS;
  const v = value as { active?: unknown; keys?: unknown };
  if (!v || typeof v !== 'object' || typeof v.active !== 'string' || !Array.isArray(v.keys)) {
    throw new SessionGateError('SG_ERR_KEYRING', `key ring ${path}: signing must be {active, keys: [...]}`);
  }
  const keys = v.keys.map((entry: unknown, i) => signingKey(entry, `${path}: signing.keys[${i}]`));
  const active = keys.find((k) => k.id === v.active);
  if (!active) {
    throw new SessionGateError(
      'SG_ERR_KEYRING',
      `key ring ${path}: active signing key ${v.active} is not in signing.keys`,
    );
  }
  return Object.freeze({ active, keys: Object.freeze(keys) });
}

function signingKey(entry: unknown, where: string): SigningKey {
  const e = entry as Partial<SigningKeyEntry> | undefined;
  const jwk = e?.jwk;
  const ok =
    typeof e?.id === 'string' &&
    /^[A-Za-z0-9_-]+$/.test(e.id) &&
    e.alg === SIGNING_ALG &&
    jwk?.kty === 'EC' &&
    jwk.crv === 'P-256' &&
    typeof jwk.x === 'string' &&
    typeof jwk.y === 'string' &&
    typeof jwk.d === 'string';
  if (!ok) {
    throw new SessionGateError('SG_ERR_KEYRING', `key ring ${where} needs an id, alg ES256 and a P-256 JWK`);
  }
  try {
    createPrivateKey({ key: jwk, format: 'jwk' });
  } catch {
    throw new SessionGateError('SG_ERR_KEYRING', `key ring ${where} is not a valid P-256 private key`);
  }
  const publicJwk = Object.freeze({
    kty: 'EC',
    crv: 'P-256',
    x: jwk.x!,
    y: jwk.y!,
    kid: e.id!,
    alg: SIGNING_ALG,
    use: 'sig',
  });
  const created = typeof e.created === 'string' ? e.created : '';
  return Object.freeze({ id: e.id!, alg: SIGNING_ALG, created, privateJwk: jwk, publicJwk });
}
