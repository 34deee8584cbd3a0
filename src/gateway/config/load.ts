import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { SessionGateError } from '../../core/errors.js';
import { configSchema, type GatewayConfig, type ProfileConfig } from './schema.js';

/** A validated configuration and where it came from. */
export interface LoadedConfig {
  config: GatewayConfig;
  /** The file's folder: relative paths in it resolve against this. */
  baseDir: string;
  file: string;
}

/** Every problem of a config file, each `path: message (line N)`. */
export class ConfigError extends SessionGateError {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super('SG_ERR_CONFIG', `${file}: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  }
}

/**
 * Read, parse and check a `sessiongate.yaml`; throws a ConfigError listing every problem.
 *
 * @example
 * ```ts
 * const { config, baseDir } = loadConfig('./sessiongate.yaml');
 * ```
 */
export function loadConfig(file: string, cwd = process.cwd()): LoadedConfig {
  const path = resolve(cwd, file);
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [`cannot read the file (${code === 'ENOENT' ? 'no such file' : code})`]);
  }
  return parseConfig(source, file, dirname(path));
}

/** Check configuration text (what `check-config` and `serve` both use). */
export function parseConfig(source: string, file: string, baseDir: string): LoadedConfig {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const at = e.linePos?.[0];
        return `invalid YAML: ${e.message.split('\n')[0]}${at ? ` (line ${at.line})` : ''}`;
      }),
    );
  }
  const lineOf = (path: (string | number)[]): string => {
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n), true);
      if (isNode(node) && node.range) return ` (line ${lines.linePos(node.range[0]).line})`;
    }
    return '';
  };
  const parsed = configSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    throw new ConfigError(
      file,
      parsed.error.issues.flatMap((i) => {
        const path = i.path.filter((p): p is string | number => typeof p !== 'symbol');
        // One line per unknown key, at the key itself: typos are the usual cause.
        if (i.code === 'unrecognized_keys') {
          return i.keys.map((k) => `${[...path, k].join('.')}: unknown setting${lineOf([...path, k])}`);
        }
        return [`${path.length ? path.join('.') : '(top level)'}: ${i.message}${lineOf(path)}`];
      }),
    );
  }
  const config = parsed.data;
  const problems = crossCheck(config);
  if (problems.length > 0) {
    throw new ConfigError(
      file,
      problems.map(([path, message]) => `${path.join('.')}: ${message}${lineOf(path)}`),
    );
  }
  return { config, baseDir, file };
}

/** The profile a route names; `default` exists even when not written. */
export function profileOf(config: GatewayConfig, name: string): ProfileConfig | undefined {
  return config.profiles[name] ?? (name === 'default' ? DEFAULT_PROFILE : undefined);
}

const DEFAULT_PROFILE = configSchema.shape.profiles.unwrap().valueType.parse({});

/** Checks that need the whole file: names that must refer to something, addresses. */
function crossCheck(config: GatewayConfig): [(string | number)[], string][] {
  const problems: [(string | number)[], string][] = [];
  const plugins = new Set(config.plugins.map((p) => p.name));
  config.plugins.forEach((p, i) => {
    if (config.plugins.findIndex((q) => q.name === p.name) !== i) {
      problems.push([['plugins', i, 'name'], `plugin name ${p.name} is used twice`]);
    }
  });
  config.routes.forEach((r, i) => {
    if (!profileOf(config, r.profile)) {
      problems.push([['routes', i, 'profile'], `no profile named ${r.profile} under profiles`]);
    }
    if (r.credentials && !plugins.has(r.credentials.plugin)) {
      problems.push([['routes', i, 'credentials', 'plugin'], `no plugin named ${r.credentials.plugin}`]);
    }
  });
  for (const [name, profile] of Object.entries(config.profiles)) {
    profile.policy.forEach((step, i) => {
      if (typeof step !== 'object') return;
      const plugin =
        'authenticate' in step ? step.authenticate : 'authorize' in step ? step.authorize : undefined;
      if (plugin !== undefined && !plugins.has(plugin)) {
        problems.push([['profiles', name, 'policy', i], `no plugin named ${plugin} under plugins`]);
      }
    });
  }
  config.trusted_proxies.forEach((cidr, i) => {
    if (!parseCidr(cidr)) problems.push([['trusted_proxies', i], `expected an address or CIDR, got ${cidr}`]);
  });
  return problems;
}

/** `10.0.0.0/8`, `::1`, `192.168.1.7` → address, prefix and family; undefined if malformed. */
export function parseCidr(
  cidr: string,
): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', bits] = cidr.split('/');
  const v = isIP(address);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : Number(bits);
  if (
    !Number.isInteger(prefix) ||
    prefix < 0 ||
    prefix > max ||
    (bits !== undefined && !/^\d+$/.test(bits))
  ) {
    return undefined;
  }
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/** A BlockList of the given CIDRs (Node's own matcher, IPv4 and IPv6). */
export function cidrList(cidrs: string[]): BlockList {
  const list = new BlockList();
  for (const c of cidrs) {
    const p = parseCidr(c);
    if (p) list.addSubnet(p.address, p.prefix, p.family);
  }
  return list;
}
