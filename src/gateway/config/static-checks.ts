import { accessSync, constants } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { silentLogger } from '../../core/logger.js';
import { BUILTIN_PLUGINS } from '../../plugins/builtin/index.js';
import { Keyring } from '../../session/keyring.js';
import { parseStoreUrl } from '../../store/open.js';
import { sshProblems } from './ssh-checks.js';

export type Problem = [(string | number)[], string];

const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Checks that need the whole file, or that read values the way the running gateway will:
 * names that must refer to something, addresses, the store URL, upstream URLs, built-in
 * plugin settings and the files the gateway reads at start. It reads the raw document and
 * skips what is not of the right type (the schema reports that).
 */
export function crossCheck(raw: unknown, baseDir: string): Problem[] {
  const top = obj(raw);
  return [
    ...referenceProblems(top),
    ...addressProblems(top),
    ...storeProblems(top),
    ...upstreamProblems(top),
    ...pluginProblems(top, baseDir),
    ...fileProblems(top, baseDir),
    ...sshProblems(top, baseDir),
  ];
}

function referenceProblems(top: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const names = list(top.plugins).map((p) => obj(p).name);
  const oidc = new Set(
    list(top.plugins)
      .map(obj)
      .filter((p) => p.runtime === 'builtin' && p.type === 'oidc')
      .map((p) => p.name),
  );
  const plugins = new Set(names.filter((n): n is string => typeof n === 'string'));
  const seen = new Set<string>();
  names.forEach((name, i) => {
    if (typeof name !== 'string') return;
    if (seen.has(name)) problems.push([['plugins', i, 'name'], `plugin name ${name} is used twice`]);
    seen.add(name);
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
    const bearer = obj(route.bearer).plugin;
    if (typeof bearer === 'string' && !oidc.has(bearer)) {
      const what = plugins.has(bearer)
        ? `plugin ${bearer} is not an oidc plugin`
        : `no plugin named ${bearer}`;
      problems.push([['routes', i, 'bearer', 'plugin'], what]);
    }
    if (
      route.reauth_within !== undefined &&
      typeof profile === 'string' &&
      Object.hasOwn(profiles, profile)
    ) {
      const why = reauthProblem(route, list(obj(profiles[profile]).policy), oidc);
      if (why) problems.push([['routes', i, 'reauth_within'], why]);
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
  return problems;
}

/** A host name (RFC 1123 labels) or an IP address, as a listener can be bound to. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const WILDCARDS = new Set(['0.0.0.0', '::']);

function addressProblems(top: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  list(top.trusted_proxies).forEach((cidr, i) => {
    if (typeof cidr === 'string' && !parseCidr(cidr)) {
      problems.push([
        ['trusted_proxies', i],
        `expected an address or CIDR, got ${/^[\x21-\x7e]{1,80}$/.test(cidr) ? cidr : JSON.stringify(cidr.slice(0, 80))}`,
      ]);
    }
  });
  const listen = obj(top.listen);
  const admin = obj(top.admin);
  for (const [section, values] of [
    ['listen', listen],
    ['admin', admin],
  ] as const) {
    const host = values.host;
    if (typeof host === 'string' && host !== '' && isIP(host) === 0 && !HOST_NAME.test(host)) {
      problems.push([
        [section, 'host'],
        `expected an IP address or a host name, got ${JSON.stringify(host.slice(0, 80))}`,
      ]);
    }
  }
  // Both listeners on one port of one address: the second could never listen.
  const listenHost = typeof listen.host === 'string' ? listen.host : '127.0.0.1';
  const adminHost = typeof admin.host === 'string' ? admin.host : '127.0.0.1';
  const listenPort = listen.port ?? 8080;
  const adminPort = admin.port ?? 8081;
  const overlap = listenHost === adminHost || WILDCARDS.has(listenHost) || WILDCARDS.has(adminHost);
  if (
    admin.enabled !== false &&
    typeof adminPort === 'number' &&
    adminPort !== 0 &&
    adminPort === listenPort &&
    overlap
  ) {
    problems.push([['admin', 'port'], `the admin listener cannot share port ${adminPort} with listen.port`]);
  }
  return problems;
}

function storeProblems(top: Record<string, unknown>): Problem[] {
  if (typeof top.store !== 'string' || top.store === '') return [];
  try {
    parseStoreUrl(top.store);
    return [];
  } catch (err) {
    return [[['store'], (err as Error).message]];
  }
}

/** The upstream URL as the proxy reads it (proxy/upstream.ts); undefined when it is usable. */
export function upstreamProblem(url: string): string | undefined {
  if (url === 'demo') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'cannot be read as a URL (http://HOST[:PORT][/PATH], port 1 to 65535)';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'expected http:// or https://';
  if (parsed.hostname === '') return 'expected a host';
  if (parsed.search || parsed.hash || parsed.username || parsed.password) {
    return 'must not carry a query, a fragment or credentials';
  }
  if (parsed.port === '0') return 'port 0 cannot be connected to';
  return undefined;
}

function upstreamProblems(top: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  list(top.routes).forEach((r, i) => {
    const upstream = obj(r).upstream;
    if (typeof upstream !== 'string') return;
    const problem = upstreamProblem(upstream);
    if (problem) problems.push([['routes', i, 'upstream'], problem]);
  });
  return problems;
}

/**
 * A built-in plugin checks its `config` when it is built, so each is built here (with a key
 * ring held in memory, nothing started, no file read before a logon needs it).
 */
function pluginProblems(top: Record<string, unknown>, baseDir: string): Problem[] {
  const problems: Problem[] = [];
  list(top.plugins).forEach((p, i) => {
    const spec = obj(p);
    const make =
      typeof spec.type === 'string' && Object.hasOwn(BUILTIN_PLUGINS, spec.type)
        ? BUILTIN_PLUGINS[spec.type]
        : undefined;
    if (spec.runtime !== 'builtin' || !make || typeof spec.name !== 'string') return;
    if (
      spec.config !== undefined &&
      (spec.config === null || typeof spec.config !== 'object' || Array.isArray(spec.config))
    )
      return;
    try {
      make(obj(spec.config), {
        name: spec.name,
        baseDir,
        keyring: Keyring.ephemeral(),
        logger: silentLogger,
      });
    } catch (err) {
      const message = (err as Error).message.replace(/^plugin [^:]*: /, '');
      problems.push([['plugins', i, 'config'], message.split('\n')[0] ?? 'invalid']);
    }
  });
  return problems;
}

/** Linux's limits on one name and on a whole path (NAME_MAX, PATH_MAX - 1), in bytes. */
const NAME_MAX_BYTES = 255;
const PATH_MAX_BYTES = 4095;

/** Files the gateway reads when it starts must be there and readable. */
function fileProblems(top: Record<string, unknown>, baseDir: string): Problem[] {
  const problems: Problem[] = [];
  const readable = (path: (string | number)[], file: unknown) => {
    if (typeof file !== 'string' || file === '') return;
    try {
      accessSync(resolve(baseDir, file), constants.R_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push([
        path,
        `cannot read ${JSON.stringify(file.slice(0, 200))} (${code === 'ENOENT' ? 'no such file' : code})`,
      ]);
    }
  };
  // Files the gateway creates when missing: a name the file system cannot hold fails at start.
  const creatable = (path: (string | number)[], file: unknown) => {
    if (typeof file !== 'string' || file === '') return;
    const full = resolve(baseDir, file);
    const longest = Math.max(...full.split('/').map((part) => Buffer.byteLength(part)));
    if (longest > NAME_MAX_BYTES || Buffer.byteLength(full) > PATH_MAX_BYTES) {
      problems.push([
        path,
        `the file name ${JSON.stringify(file.slice(0, 60))}... is too long for the file system`,
      ]);
    }
  };
  const admin = obj(top.admin);
  if (admin.enabled !== false) creatable(['admin', 'token_file'], admin.token_file);
  creatable(['keys'], top.keys);
  creatable(['audit', 'file'], obj(top.audit).file);
  const tls = obj(obj(top.listen).tls);
  readable(['listen', 'tls', 'cert'], tls.cert);
  readable(['listen', 'tls', 'key'], tls.key);
  list(top.rules).forEach((f, i) => readable(['rules', i], f));
  list(top.routes).forEach((r, i) =>
    list(obj(r).rules).forEach((f, j) => readable(['routes', i, 'rules', j], f)),
  );
  list(top.plugins).forEach((p, i) => {
    const spec = obj(p);
    if (spec.runtime === 'module' || spec.runtime === 'sps-python')
      readable(['plugins', i, 'path'], spec.path);
    if (spec.runtime === 'sps-python') readable(['plugins', i, 'config_file'], spec.config_file);
  });
  return problems;
}

/** `10.0.0.0/8`, `::1`, `192.168.1.7` → address, prefix and family; undefined if malformed. */
export function parseCidr(
  cidr: string,
): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const parts = cidr.split('/');
  // One prefix at most, and no zone id (%eth0): an address list cannot match one.
  if (parts.length > 2 || cidr.includes('%')) return undefined;
  const [address = '', bits] = parts;
  const v = isIP(address);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const prefix = bits === undefined ? max : Number(bits);
  if (prefix > max) return undefined;
  return { address, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * Why a route's `reauth_within` cannot work: a bearer token cannot log on again, and the logon
 * must be one the gateway can repeat on its own pages (not at an identity provider).
 */
function reauthProblem(
  route: Record<string, unknown>,
  policy: unknown[],
  oidc: Set<unknown>,
): string | undefined {
  if (route.bearer !== undefined)
    return 'reauth_within cannot be used with bearer (a token cannot log on again)';
  const steps = policy.map((s) => (s === 'logon' ? 'logon' : obj(s).authenticate));
  if (steps.some((p) => oidc.has(p)))
    return 'reauth_within needs a logon the gateway can repeat: the profile signs in at an identity provider';
  if (!steps.some((p) => p !== undefined))
    return 'reauth_within needs a profile whose policy has a logon or authenticate step';
  return undefined;
}
