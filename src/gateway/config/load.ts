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
  /** ` (line N)` where a path of the configuration is written in the file ('' if unknown). */
  lineOf?: (path: readonly (string | number)[]) => string;
}

/** Every problem of a config file, each `path: message (line N)`. */
export class ConfigError extends SessionGateError {
  readonly problems: string[];
  constructor(
    readonly file: string,
    problems: string[],
  ) {
    // Keys and values from the file may hold line breaks or terminal controls: each problem
    // stays one printable line.
    const lines = problems.map(printable);
    super('SG_ERR_CONFIG', `${file}: ${lines.length} problem(s):\n  ${lines.join('\n  ')}`);
    this.problems = lines;
  }
}

/**
 * One printable line without a URL password: control characters (line breaks, escapes, bidi
 * overrides) written as \u escapes, and `scheme://user:PASSWORD@` as `scheme://user:***@`.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const printable = (line: string): string =>
  line
    .replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/\b([a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]*@/gi, '$1***@');

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
  return { config, baseDir, file, lineOf };
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
