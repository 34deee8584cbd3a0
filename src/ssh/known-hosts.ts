import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../core/logger.js';
import { checkKnownHost, fingerprintOf, knownHostsLine, parseKnownHosts } from './host-keys.js';

/** The key type named at the start of an SSH public key blob (`ssh-ed25519`, ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + Math.min(n, 64)).toString('latin1');
}

/**
 * The targets' host keys, in the operator's OpenSSH `known_hosts` file (read at each check, so
 * an edit counts at once). A key that does not match refuses the target with a message that
 * names the host and both fingerprints; an unknown key is refused too, or pinned (appended)
 * when the config says so.
 *
 * @example
 * ```ts
 * const known = new KnownHostsFile('/etc/sessiongate/known_hosts', 'refuse', logger);
 * const verdict = known.verify('db1.internal', 22, keyBlob); // true, or the message for the user
 * ```
 */
export class KnownHostsFile {
  constructor(
    readonly file: string,
    private readonly unknown: 'refuse' | 'pin',
    private readonly logger: Logger,
  ) {}

  verify(host: string, port: number, key: Buffer): true | string {
    const entries = existsSync(this.file) ? parseKnownHosts(readFileSync(this.file, 'utf8')) : [];
    const verdict = checkKnownHost(entries, host, port, key);
    if (verdict === 'match') return true;
    const name = port === 22 ? host : `[${host}]:${port}`;
    const offered = `${keyTypeOf(key)} ${fingerprintOf(key)}`;
    if (verdict === 'mismatch') {
      const listed = entries
        .filter((e) => checkKnownHost([e], host, port, e.keyBlob) === 'match')
        .map((e) => `${e.keyType} ${fingerprintOf(e.keyBlob)} (line ${e.line})`);
      this.logger.warn({ host: name, offered, listed }, 'target host key does not match known_hosts');
      return `the host key of ${name} does not match ${this.file}: the target offered ${offered}, the file lists ${listed.join(', ') || 'it as revoked'}`;
    }
    if (this.unknown === 'pin') {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      appendFileSync(this.file, knownHostsLine(host, port, keyTypeOf(key), key), { mode: 0o600 });
      this.logger.info({ host: name, key: offered }, 'target host key pinned on first use');
      return true;
    }
    return `the host key of ${name} is unknown (${offered}); add it to ${this.file} (ssh-keyscan -p ${port} ${host})`;
  }
}
