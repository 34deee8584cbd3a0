import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { SessionGateError } from '../../core/errors.js';
import type { Keyring } from '../../session/keyring.js';
import { writeFileAtomic } from './files.js';

/**
 * The credentials file of the `file-credentials` plugin. The whole content is sealed with the
 * gateway key ring (AES-256-GCM), so the file shows neither the secrets nor which accounts and
 * assets it holds:
 *
 * ```json
 * {"format": "sessiongate-credentials", "version": 1, "sealed": "sg1.<key>.<iv>.<tag>.<body>"}
 * ```
 *
 * Sealed inside: `{"entries": {"root@db1.example.org": {"passwords": [...], "private_keys": [["ssh-rsa", "-----BEGIN ..."]]}}}`.
 */
export interface CredentialEntry {
  passwords: string[];
  private_keys: [string, string][];
}

export type Credentials = Map<string, CredentialEntry>;

const FORMAT = 'sessiongate-credentials';
/** The key-ring context of the sealed content. */
const CONTEXT = 'file-credentials:v1';

const envelopeSchema = z.strictObject({
  format: z.literal(FORMAT),
  version: z.literal(1),
  sealed: z.string(),
});

const contentSchema = z.strictObject({
  entries: z.record(
    z.string(),
    z.strictObject({
      passwords: z.array(z.string()).default([]),
      private_keys: z.array(z.tuple([z.string(), z.string()])).default([]),
    }),
  ),
});

/** `account@asset`: the asset (after the last `@`) in lower case, the account as given. */
export function credentialKey(account: string, asset: string): string {
  return `${account}@${asset.toLowerCase()}`;
}

/** Split `ACCOUNT@ASSET` at its last `@`; undefined when either part is empty. */
export function parseCredentialKey(text: string): { account: string; asset: string } | undefined {
  const at = text.lastIndexOf('@');
  const account = text.slice(0, at);
  const asset = text.slice(at + 1);
  if (at <= 0 || asset === '' || /\p{Cc}|\s/u.test(text)) return undefined;
  return { account, asset: asset.toLowerCase() };
}

/** Decrypt and check the text of a credentials file. */
export function parseCredentials(text: string, keyring: Keyring, file: string): Credentials {
  let envelope: z.infer<typeof envelopeSchema>;
  try {
    envelope = envelopeSchema.parse(JSON.parse(text));
  } catch {
    throw new SessionGateError('SG_ERR_CONFIG', `${file}: not a sessiongate credentials file`);
  }
  let content: z.infer<typeof contentSchema>;
  try {
    content = contentSchema.parse(JSON.parse(keyring.open(envelope.sealed, CONTEXT)));
  } catch {
    throw new SessionGateError(
      'SG_ERR_CONFIG',
      `${file}: cannot decrypt with this key ring (wrong key file?)`,
    );
  }
  return new Map(Object.entries(content.entries));
}

/** Read a credentials file; a missing file has no entries. */
export function readCredentials(path: string, keyring: Keyring): Credentials {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    const why = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new SessionGateError('SG_ERR_CONFIG', `${path}: cannot read (${why})`, {
      cause: err,
    });
  }
  return parseCredentials(text, keyring, path);
}

/** Seal and write the whole file atomically (temp file + rename, mode 0600). */
export function writeCredentials(path: string, keyring: Keyring, entries: Credentials): void {
  const content = { entries: Object.fromEntries([...entries].sort(([a], [b]) => a.localeCompare(b))) };
  const envelope = { format: FORMAT, version: 1, sealed: keyring.seal(JSON.stringify(content), CONTEXT) };
  writeFileAtomic(path, JSON.stringify(envelope) + '\n');
}
