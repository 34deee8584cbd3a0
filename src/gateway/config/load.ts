import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { AddressMatcher } from '../http/addresses.js';
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
        // linePos is filled only with prettyErrors; the offset is always there.
        const at = e.linePos?.[0] ?? lines.linePos(e.pos[0]);
        return `invalid YAML: ${e.message.split('\n')[0]}${at.line > 0 ? ` (line ${at.line})` : ''}`;
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
  const raw: unknown = doc.toJS() ?? {};
  const parsed = configSchema.safeParse(raw);
  const problems = parsed.success
    ? []
    : parsed.error.issues.flatMap((i) => {
        const path = i.path.filter((p): p is string | number => typeof p !== 'symbol');
        // One line per unknown key, at the key itself: typos are the usual cause.
        if (i.code === 'unrecognized_keys') {
          return i.keys.map((k) => `${[...path, k].join('.')}: unknown setting${lineOf([...path, k])}`);
        }
        return [`${path.length ? path.join('.') : '(top level)'}: ${i.message}${lineOf(path)}`];
      });
  // References and addresses are checked even when the shape is wrong, so one run lists all.
  for (const [path, message] of crossCheck(raw))
    problems.push(`${path.join('.')}: ${message}${lineOf(path)}`);
  if (!parsed.success || problems.length > 0) throw new ConfigError(file, problems);
  const config = parsed.data;
  return { config, baseDir, file };
}

/** The profile a route names; `default` exists even when not written. */
export function profileOf(config: GatewayConfig, name: string): ProfileConfig | undefined {
  return config.profiles[name] ?? (name === 'default' ? DEFAULT_PROFILE : undefined);
}

const DEFAULT_PROFILE = configSchema.shape.profiles.unwrap().valueType.parse({});

/**
 * Checks that need the whole file: names that must refer to something, addresses. It reads
 * the raw document and skips what is not of the right type (the schema reports that).
 */
function crossCheck(raw: unknown): [(string | number)[], string][] {
  const problems: [(string | number)[], string][] = [];
  const obj = (v: unknown): Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
  const top = obj(raw);
  const names = list(top.plugins).map((p) => obj(p).name);
  const plugins = new Set(names.filter((n): n is string => typeof n === 'string'));
  names.forEach((name, i) => {
    if (typeof name === 'string' && names.indexOf(name) !== i) {
      problems.push([['plugins', i, 'name'], `plugin name ${name} is used twice`]);
    }
  });
  const profiles = obj(top.profiles);
  list(top.routes).forEach((r, i) => {
    const route = obj(r);
    const profile = route.profile ?? 'default';
    if (
      typeof profile === 'string' &&
      profile !== '' &&
      profile !== 'default' &&
      !Object.hasOwn(profiles, profile)
    ) {
      problems.push([['routes', i, 'profile'], `no profile named ${profile} under profiles`]);
    }
    const plugin = obj(route.credentials).plugin;
    if (typeof plugin === 'string' && !plugins.has(plugin)) {
      problems.push([['routes', i, 'credentials', 'plugin'], `no plugin named ${plugin}`]);
    }
  });
  for (const [name, profile] of Object.entries(profiles)) {
    list(obj(profile).policy).forEach((s, i) => {
      const step = obj(s);
      const plugin = step.authenticate ?? step.authorize;
      if (typeof plugin === 'string' && plugin !== '' && !plugins.has(plugin)) {
        problems.push([['profiles', name, 'policy', i], `no plugin named ${plugin} under plugins`]);
      }
    });
  }
  list(top.trusted_proxies).forEach((cidr, i) => {
    if (typeof cidr === 'string' && !parseCidr(cidr)) {
      problems.push([['trusted_proxies', i], `expected an address or CIDR, got ${cidr}`]);
    }
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

/** A matcher of the given CIDRs (Node's own BlockList, IPv4 and IPv6); invalid ones are skipped. */
export function cidrList(cidrs: string[]): AddressMatcher {
  return new AddressMatcher(cidrs.map((c) => parseCidr(c)).filter((p) => p !== undefined));
}
