import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { SessionGateError } from '../core/errors.js';
import { globMatch } from './destination.js';

const { utils } = ssh2;

/** The gateway's own host key, as the SSH server and the operator need it. */
export interface HostKey {
  /** The private key file's bytes, for ssh2's `hostKeys`. */
  privateKey: Buffer;
  /** `ssh-ed25519 AAAA…`: the line an `authorized_keys`/`known_hosts` entry is built from. */
  publicLine: string;
  /** `SHA256:…` as `ssh-keygen -l` prints it. */
  fingerprint: string;
}

/**
 * Reads the gateway's SSH host key; creates an ed25519 key (file 0600, folder 0700, plus
 * `<file>.pub`) when the file does not exist yet.
 * A file that is not an unencrypted SSH private key is an `SG_ERR_CONFIG` error, one line.
 *
 * @example
 * ```ts
 * const key = loadOrCreateHostKey('/var/lib/sessiongate/ssh_host_ed25519_key');
 * new ssh2.Server({ hostKeys: [key.privateKey] });
 * logger.info({ fingerprint: key.fingerprint }, 'ssh host key');
 * ```
 */
export function loadOrCreateHostKey(file: string): HostKey {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new SessionGateError('SG_ERR_CONFIG', `${file}: cannot read the SSH host key: ${errText(err)}`);
    }
    data = createHostKey(file);
  }
  const parsed = utils.parseKey(data);
  const key = Array.isArray(parsed) ? (parsed[0] as unknown) : parsed;
  if (key instanceof Error || !key) {
    const reason =
      key instanceof Error && /passphrase/i.test(key.message) ? 'it has a passphrase' : errText(key);
    throw new SessionGateError('SG_ERR_CONFIG', `${file}: not an SSH private key we can use (${reason})`);
  }
  const k = key as ssh2.ParsedKey;
  if (!k.isPrivateKey()) {
    throw new SessionGateError('SG_ERR_CONFIG', `${file}: not an SSH private key (it is a public key)`);
  }
  const blob = k.getPublicSSH();
  return {
    privateKey: data,
    publicLine: `${k.type} ${blob.toString('base64')}`,
    fingerprint: fingerprintOf(blob),
  };
}

/** Writes a new ed25519 key; `wx` so two starting gateways never overwrite each other's key. */
function createHostKey(file: string): Buffer {
  const pair = generateEd25519KeyPair('sessiongate host key');
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file);
    throw new SessionGateError('SG_ERR_CONFIG', `${file}: cannot create the SSH host key: ${errText(err)}`);
  }
  try {
    writeFileSync(`${file}.pub`, `${pair.public} sessiongate host key\n`, { mode: 0o644 });
  } catch {
    // The .pub file is a convenience for operators; the key itself is in place.
  }
  return Buffer.from(pair.private);
}

/**
 * A new ed25519 key pair in OpenSSH format that ssh2 and OpenSSH can both read back.
 * ssh2's generator drops a leading zero byte of the public key about once in 300 keys and
 * writes a file nobody can parse (found by CI); such a pair is made again.
 *
 * @example
 * ```ts
 * const pair = generateEd25519KeyPair('alice@laptop');
 * writeFileSync('id_ed25519', pair.private, { mode: 0o600 });
 * ```
 */
export function generateEd25519KeyPair(comment?: string): { private: string; public: string } {
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519', comment === undefined ? {} : { comment });
    const parsed = utils.parseKey(pair.private);
    if (!(parsed instanceof Error) && !Array.isArray(parsed)) return pair;
  }
}

function errText(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * The OpenSSH SHA256 fingerprint of a public key blob (unpadded base64, as `ssh-keygen -l`).
 *
 * @example
 * ```ts
 * fingerprintOf(parsedKey.getPublicSSH()); // 'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s'
 * ```
 */
export function fingerprintOf(publicKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** One `known_hosts` line. */
export interface KnownHost {
  /** `@revoked` and `@cert-authority` lines; certificate authorities are not used for matching. */
  marker?: 'revoked' | 'cert-authority';
  /** The comma list, as written: names, `[name]:port`, wildcards, `!negations`, `|1|salt|hash`. */
  patterns: string[];
  keyType: string;
  keyBlob: Buffer;
  /** 1-based line number, for messages. */
  line: number;
}

/**
 * Parses OpenSSH `known_hosts` text. Comments, blank lines and malformed lines are skipped
 * (as ssh does).
 *
 * @example
 * ```ts
 * const entries = parseKnownHosts(readFileSync('known_hosts', 'utf8'));
 * ```
 */
export function parseKnownHosts(text: string): KnownHost[] {
  const entries: KnownHost[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const fields = raw.trim().split(/[ \t]+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) return;
    let marker: KnownHost['marker'];
    if (fields[0].startsWith('@')) {
      const name = fields.shift();
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else return;
    }
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key || !/^[A-Za-z0-9+/]+={0,2}$/.test(key)) return;
    const keyBlob = Buffer.from(key, 'base64');
    const entry: KnownHost = { patterns: hosts.split(','), keyType, keyBlob, line: index + 1 };
    if (marker) entry.marker = marker;
    entries.push(entry);
  });
  return entries;
}

/**
 * Looks a server's key up, as ssh does: `match` when a line for the host has this key;
 * `mismatch` when the key is `@revoked` for the host, or the host is listed only with other
 * keys (stricter than ssh, which calls a key of another type "new": a gateway never asks);
 * `unknown` when no line names the host.
 *
 * @example
 * ```ts
 * checkKnownHost(entries, 'db1.internal', 2222, keyBlob); // 'match' | 'mismatch' | 'unknown'
 * ```
 */
export function checkKnownHost(
  entries: readonly KnownHost[],
  host: string,
  port: number,
  keyBlob: Buffer,
): 'match' | 'mismatch' | 'unknown' {
  const name = hostEntryName(host, port);
  let listed = false;
  let matched = false;
  for (const entry of entries) {
    if (entry.marker === 'cert-authority' || !namesHost(entry.patterns, name)) continue;
    const same = entry.keyBlob.equals(keyBlob);
    if (entry.marker === 'revoked') {
      if (same) return 'mismatch';
      continue;
    }
    listed = true;
    if (same) matched = true;
  }
  if (matched) return 'match';
  return listed ? 'mismatch' : 'unknown';
}

/** The name known_hosts stores: `host` for port 22, `[host]:port` otherwise; lowercase. */
function hostEntryName(host: string, port: number): string {
  const bare = (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host).toLowerCase();
  return port === 22 ? bare : `[${bare}]:${port}`;
}

/** OpenSSH `match_hostname`: any negated pattern that matches refuses the whole line. */
function namesHost(patterns: readonly string[], name: string): boolean {
  let matched = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    const hit = pattern.startsWith('|1|')
      ? hashedMatches(pattern, name)
      : globMatch(pattern.toLowerCase(), name);
    if (hit) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`. */
function hashedMatches(pattern: string, name: string): boolean {
  const [, , salt, hash] = pattern.split('|');
  if (!salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/**
 * A `known_hosts` line pinning `keyBlob` for `host:port` (hashed like `ssh-keygen -H` when
 * asked), newline included, ready to append.
 *
 * @example
 * ```ts
 * knownHostsLine('db1', 2222, 'ssh-ed25519', blob); // '[db1]:2222 ssh-ed25519 AAAA…\n'
 * ```
 */
export function knownHostsLine(
  host: string,
  port: number,
  keyType: string,
  keyBlob: Buffer,
  options?: { hashed?: boolean },
): string {
  let name = hostEntryName(host, port);
  if (options?.hashed) {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update(name).digest();
    name = `|1|${salt.toString('base64')}|${hash.toString('base64')}`;
  }
  return `${name} ${keyType} ${keyBlob.toString('base64')}\n`;
}
