import { accessSync, constants, existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';

type Problem = [(string | number)[], string];

const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Public key types an authorized_keys line may name. */
const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/**
 * Whether a line is an SSH public key as authorized_keys writes it (`type base64 [comment]`):
 * the type is one SSH knows, and the key data decodes to a blob that names the same type.
 */
export function publicKeyLineProblem(line: string): string | undefined {
  const [type = '', data = ''] = line.trim().split(/\s+/);
  if (!KEY_TYPES.has(type))
    return `expected an SSH public key ("ssh-ed25519 AAAA... comment"), got type ${JSON.stringify(type.slice(0, 40))}`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(data)) return 'the key data is not base64';
  const blob = Buffer.from(data, 'base64');
  const n = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (n < 0 || blob.subarray(4, 4 + n).toString('latin1') !== type)
    return `the key data is not a ${type} key`;
  return undefined;
}

/** A host pattern of an SSH route: a shell pattern of a name or address, or a CIDR. */
function hostPatternProblem(pattern: string): string | undefined {
  if (pattern.includes('/')) {
    const [address = '', bits = ''] = pattern.split('/');
    const v = isIP(address);
    if (v === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (v === 4 ? 32 : 128)) {
      return `expected a CIDR such as 10.0.0.0/8, got ${JSON.stringify(pattern.slice(0, 80))}`;
    }
    return undefined;
  }
  if (!/^[A-Za-z0-9.*?:[\]_-]+$/.test(pattern)) {
    return `expected a host name, address or pattern (letters, digits, . - : * ?), got ${JSON.stringify(pattern.slice(0, 80))}`;
  }
  return undefined;
}

/**
 * The `ssh` section's checks beyond its schema: names that must refer to something (profiles,
 * plugins), public keys, host patterns, and the files the SSH gateway reads or creates.
 */
export function sshProblems(top: Record<string, unknown>, baseDir: string): Problem[] {
  if (top.ssh === undefined) return [];
  const ssh = obj(top.ssh);
  const problems: Problem[] = [];
  const plugins = new Set(list(top.plugins).map((p) => obj(p).name));
  const profiles = obj(top.profiles);
  list(ssh.routes).forEach((r, i) => {
    const route = obj(r);
    const profile = route.profile ?? 'default';
    if (typeof profile === 'string' && profile !== 'default' && !Object.hasOwn(profiles, profile)) {
      problems.push([['ssh', 'routes', i, 'profile'], `no profile named ${profile} under profiles`]);
    }
    const plugin = obj(route.credentials).plugin;
    if (typeof plugin === 'string' && !plugins.has(plugin)) {
      problems.push([
        ['ssh', 'routes', i, 'credentials', 'plugin'],
        `no plugin named ${plugin} under plugins`,
      ]);
    }
    list(route.hosts).forEach((h, j) => {
      const problem = typeof h === 'string' ? hostPatternProblem(h) : undefined;
      if (problem) problems.push([['ssh', 'routes', i, 'hosts', j], problem]);
    });
    const dir = obj(route.recording).dir;
    if (typeof dir === 'string')
      problems.push(...fileNameProblems(['ssh', 'routes', i, 'recording', 'dir'], dir, baseDir));
  });
  for (const [user, lines] of Object.entries(obj(ssh.authorized_keys))) {
    list(lines).forEach((line, i) => {
      const problem = typeof line === 'string' ? publicKeyLineProblem(line) : undefined;
      if (problem) problems.push([['ssh', 'authorized_keys', user, i], problem]);
    });
  }
  list(ssh.host_keys ?? ['./var/ssh_host_ed25519_key']).forEach((f, i) => {
    if (typeof f === 'string') problems.push(...keptFileProblems(['ssh', 'host_keys', i], f, baseDir));
  });
  problems.push(...portProblems(top, ssh));
  const known = ssh.known_hosts ?? './var/known_hosts';
  if (typeof known === 'string') problems.push(...keptFileProblems(['ssh', 'known_hosts'], known, baseDir));
  return problems;
}

/** A file the gateway reads when it is there and creates (or appends to) when it is not. */
function keptFileProblems(path: (string | number)[], file: string, baseDir: string): Problem[] {
  const full = resolve(baseDir, file);
  if (!existsSync(full)) return fileNameProblems(path, file, baseDir);
  try {
    accessSync(full, constants.R_OK);
    return [];
  } catch (err) {
    return [
      [path, `cannot read ${JSON.stringify(file.slice(0, 200))} (${(err as NodeJS.ErrnoException).code})`],
    ];
  }
}

/** A name the file system cannot hold (NAME_MAX 255 bytes, PATH_MAX 4095) fails at start. */
function fileNameProblems(path: (string | number)[], file: string, baseDir: string): Problem[] {
  const full = resolve(baseDir, file);
  const longest = Math.max(...full.split('/').map((part) => Buffer.byteLength(part)));
  if (longest > 255 || Buffer.byteLength(full) > 4095) {
    return [[path, `the file name ${JSON.stringify(file.slice(0, 60))}... is too long for the file system`]];
  }
  return [];
}

/** The SSH listener on a port the HTTP or admin listener of the same address already has. */
function portProblems(top: Record<string, unknown>, ssh: Record<string, unknown>): Problem[] {
  const listen = obj(ssh.listen);
  const port = listen.port ?? 2222;
  const host = listen.host ?? '127.0.0.1';
  if (typeof port !== 'number' || port === 0) return [];
  const others: [string, Record<string, unknown>, number][] = [
    ['listen.port', obj(top.listen), 8080],
    ['admin.port', obj(top.admin), 8081],
  ];
  const wild = (h: unknown) => h === '0.0.0.0' || h === '::';
  for (const [name, section, fallback] of others) {
    if (name === 'admin.port' && section.enabled === false) return [];
    const otherHost = section.host ?? '127.0.0.1';
    if ((section.port ?? fallback) === port && (otherHost === host || wild(otherHost) || wild(host))) {
      return [[['ssh', 'listen', 'port'], `the SSH listener cannot share port ${port} with ${name}`]];
    }
  }
  return [];
}
