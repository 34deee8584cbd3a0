import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SessionGateError } from '../core/errors.js';
import {
  NO_SIGNING_KEYS,
  newSigningKey,
  parseSigningKeys,
  type SigningKeyEntry,
  type SigningKeys,
} from './signing-keys.js';

interface KeyEntry {
  id: string;
  key: string; // base64, 32 bytes
  created: string;
}

interface KeyringFile {
  version: 1;
  active: string;
  keys: KeyEntry[];
  /** Keys that sign identity assertions (absent in files made before them). */
  signing?: { active: string; keys: SigningKeyEntry[] };
}

const PREFIX = 'sg1';

/**
 * The keys that encrypt secure session variables (AES-256-GCM). Values name the key that
 * sealed them, so a new active key can be added while old values stay readable.
 *
 * @example
 * ```ts
 * const ring = Keyring.loadOrCreate('./var/keyring.json'); // created 0600 on first use
 * const sealed = ring.seal('s3cret', `${sessionId}\0session.logon.last.password`);
 * ring.open(sealed, `${sessionId}\0session.logon.last.password`); // 's3cret'
 * ```
 */
export class Keyring {
  private readonly keys: Map<string, Buffer>;
  private constructor(
    readonly activeId: string,
    keys: Map<string, Buffer>,
    /** The identity assertion's signing keys: the active one and every published one. */
    readonly signing: SigningKeys = NO_SIGNING_KEYS,
  ) {
    this.keys = keys;
  }

  /** A key ring held only in memory (tests, the memory store). */
  static ephemeral(): Keyring {
    const id = newKeyId();
    return new Keyring(id, new Map([[id, randomBytes(32)]]));
  }

  /**
   * Read the key ring file, or create it with one fresh key (and one signing key) and mode
   * 0600. `signing`: also add a signing key to an existing file that has none.
   */
  static loadOrCreate(path: string, options: { signing?: boolean } = {}): Keyring {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new SessionGateError(
          'SG_ERR_KEYRING',
          `cannot read key ring ${path}: ${(err as Error).message}`,
        );
      }
      const id = newKeyId();
      const file: KeyringFile = {
        version: 1,
        active: id,
        keys: [{ id, key: randomBytes(32).toString('base64'), created: new Date().toISOString() }],
      };
      const signing = newSigningKey();
      file.signing = { active: signing.id, keys: [signing] };
      writeKeyringFile(path, file);
      return Keyring.fromFile(file, path);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SessionGateError('SG_ERR_KEYRING', `key ring ${path} is not valid JSON`);
    }
    const ring = Keyring.fromFile(parsed, path);
    if (!options.signing || ring.signing.active) return ring;
    Keyring.rotateSigning(path);
    return Keyring.loadOrCreate(path);
  }

  /**
   * Add a new signing key to the file and make it the active one: assertions signed from the
   * next start on carry its id; older keys stay published (and their assertions verifiable)
   * until they are removed from the file's `signing.keys`.
   */
  static rotateSigning(path: string): string {
    const file = JSON.parse(readFileSync(path, 'utf8')) as KeyringFile;
    Keyring.fromFile(file, path);
    const key = newSigningKey();
    file.signing = { active: key.id, keys: [...(file.signing?.keys ?? []), key] };
    writeKeyringFile(path, file);
    return key.id;
  }

  /** Add a new key to the file and make it the active one; older keys stay for reading. */
  static rotate(path: string): string {
    const file = JSON.parse(readFileSync(path, 'utf8')) as KeyringFile;
    Keyring.fromFile(file, path);
    const id = newKeyId();
    file.keys.push({ id, key: randomBytes(32).toString('base64'), created: new Date().toISOString() });
    file.active = id;
    writeKeyringFile(path, file);
    return id;
  }

  /**
   * Remove an old signing key from the file: its public key leaves the JWKS at the next start,
   * and assertions it signed no longer verify. The active key cannot be removed.
   */
  static removeSigning(path: string, id: string): void {
    const file = JSON.parse(readFileSync(path, 'utf8')) as KeyringFile;
    Keyring.fromFile(file, path);
    if (file.signing?.active === id) {
      throw new SessionGateError('SG_ERR_KEYRING', `${id} is the active signing key: rotate first`);
    }
    const keys = file.signing?.keys ?? [];
    if (!file.signing || !keys.some((k) => k.id === id)) {
      throw new SessionGateError('SG_ERR_KEYRING', `key ring ${path} has no signing key ${id}`);
    }
    file.signing.keys = keys.filter((k) => k.id !== id);
    writeKeyringFile(path, file);
  }

  private static fromFile(file: unknown, path: string): Keyring {
    const f = file as Partial<KeyringFile>;
    if (!f || f.version !== 1 || typeof f.active !== 'string' || !Array.isArray(f.keys)) {
      throw new SessionGateError(
        'SG_ERR_KEYRING',
        `key ring ${path}: expected {version: 1, active, keys: [...]}`,
      );
    }
    const keys = new Map<string, Buffer>();
    for (const [i, k] of f.keys.entries()) {
      const key = typeof k?.key === 'string' ? Buffer.from(k.key, 'base64') : Buffer.alloc(0);
      if (typeof k?.id !== 'string' || !/^[A-Za-z0-9_-]+$/.test(k.id) || key.length !== 32) {
        throw new SessionGateError(
          'SG_ERR_KEYRING',
          `key ring ${path}: keys[${i}] needs an id and a 32-byte base64 key`,
        );
      }
      keys.set(k.id, key);
    }
    if (!keys.has(f.active)) {
      throw new SessionGateError('SG_ERR_KEYRING', `key ring ${path}: active key ${f.active} is not in keys`);
    }
    return new Keyring(f.active, keys, parseSigningKeys(f.signing, path));
  }

  /** Encrypt `plaintext`, bound to `context` (associated data: session id and variable name). */
  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.activeId)!, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [
      PREFIX,
      this.activeId,
      iv.toString('base64url'),
      tag.toString('base64url'),
      body.toString('base64url'),
    ].join('.');
  }

  /** Decrypt a value made by `seal` with the same context; throws SG_ERR_DECRYPT otherwise. */
  open(sealed: string, context: string): string {
    const [prefix, keyId, iv, tag, body, extra] = sealed.split('.');
    const key = keyId === undefined ? undefined : this.keys.get(keyId);
    if (
      prefix !== PREFIX ||
      !key ||
      iv === undefined ||
      tag === undefined ||
      body === undefined ||
      extra !== undefined
    ) {
      throw new SessionGateError('SG_ERR_DECRYPT', `secure value sealed with unknown key ${String(keyId)}`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new SessionGateError(
        'SG_ERR_DECRYPT',
        'secure value failed authentication (wrong key, session or name)',
      );
    }
  }

  /**
   * An HMAC-SHA256 of `data` (base64url) under a key derived from the active key for `purpose`
   * alone, so a MAC never doubles as another purpose's. Every process on the key ring computes
   * the same one; after a key rotation the MACs made before no longer match.
   *
   * @example
   * ```ts
   * const csrf = ring.mac('csrf', sessionId); // a form token bound to the session
   * ```
   */
  mac(purpose: string, data: string): string {
    const key = Buffer.from(
      hkdfSync('sha256', this.keys.get(this.activeId)!, '', `sessiongate ${purpose}`, 32),
    );
    return createHmac('sha256', key).update(data, 'utf8').digest('base64url');
  }
}

function newKeyId(): string {
  return `k${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
}

function writeKeyringFile(path: string, file: KeyringFile): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
