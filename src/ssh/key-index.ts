import ssh2 from 'ssh2';
import { SessionGateError } from '../core/errors.js';
import { sameKey } from './logon.js';

const { utils } = ssh2;

/**
 * The public keys of the config's `ssh.authorized_keys`, by gateway user: which users a key
 * the client offers belongs to.
 *
 * @example
 * ```ts
 * const keys = new KeyIndex({ alice: ['ssh-ed25519 AAAA... alice@laptop'] });
 * keys.usersOf(offeredBlob); // ['alice']
 * ```
 */
export class KeyIndex {
  private readonly keys: { user: string; blob: Buffer }[] = [];

  constructor(byUser: Record<string, string[]>) {
    for (const [user, lines] of Object.entries(byUser)) {
      lines.forEach((line, i) => {
        const blob = publicKeyBlob(line);
        if (!blob) {
          throw new SessionGateError(
            'SG_ERR_CONFIG',
            `ssh.authorized_keys.${user}[${i}]: not an SSH public key (expected "ssh-ed25519 AAAA... comment")`,
          );
        }
        this.keys.push({ user, blob });
      });
    }
  }

  usersOf(blob: Buffer): string[] {
    return this.keys.filter((k) => sameKey(k.blob, blob)).map((k) => k.user);
  }
}

/** The key blob of an authorized_keys line (options before the key type are not accepted); null if it is none. */
export function publicKeyBlob(line: string): Buffer | null {
  const parsed = utils.parseKey(line.trim());
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || key.isPrivateKey()) return null;
  return key.getPublicSSH();
}
