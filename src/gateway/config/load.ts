import { readFileSync, statSync } from 'node:fs';
import { AddressMatcher } from '../http/addresses.js';
import { dirname, resolve } from 'node:path';
import { SessionGateError } from '../../core/errors.js';
import { configSchema, type GatewayConfig, type ProfileConfig } from './schema.js';
import { crossCheck, parseCidr } from './static-checks.js';
import {
  MAX_CONFIG_BYTES,
  readYamlSource,
  tooLarge,
  YamlSourceError,
  type YamlSource,
} from './yaml-source.js';

export { parseCidr };

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
    // A file over the limit is refused before it is read into memory.
    const bytes = statSync(path).size;
    if (bytes > MAX_CONFIG_BYTES) throw new YamlSourceError([tooLarge(bytes)]);
    source = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof YamlSourceError) throw new ConfigError(file, err.problems);
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [`cannot read the file (${code === 'ENOENT' ? 'no such file' : code})`]);
  }
  return parseConfig(source, file, dirname(path));
}

/** Check configuration text (what `check-config` and `serve` both use). */
export function parseConfig(source: string, file: string, baseDir: string): LoadedConfig {
  let yaml: YamlSource;
  try {
    yaml = readYamlSource(source);
  } catch (err) {
    if (err instanceof YamlSourceError) throw new ConfigError(file, err.problems);
    throw err;
  }
  const { raw, lineOf } = yaml;
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
  for (const [path, message] of crossCheck(raw, baseDir))
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

/** A matcher of the given CIDRs (Node's own BlockList, IPv4 and IPv6); invalid ones are skipped. */
export function cidrList(cidrs: string[]): AddressMatcher {
  return new AddressMatcher(cidrs.map((c) => parseCidr(c)).filter((p) => p !== undefined));
}
