import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SessionGateError } from '../core/errors.js';
import { pluginSpecSchema, type PluginSpec } from '../plugins/load.js';
import { loadCliConfig } from './config-file.js';
import { DEFAULT_KEY_FILE } from './context.js';

/** The `plugins:` list of a gateway config file, checked, and what resolves paths in it. */
export interface PluginConfig {
  file: string;
  /** The config file's folder: plugin paths resolve against it. */
  dir: string;
  /** The key ring path (config `keys`, resolved), if the file names one. */
  keys?: string;
  plugins: PluginSpec[];
}

function formatPath(path: PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/**
 * Read the config file (the parts the CLI checks, see config-file.ts) and its `plugins:` list,
 * each entry checked with `pluginSpecSchema`. Every problem is listed on one line, e.g.
 * `gw.yaml: plugins[2].path: required: the module plugin's location; plugins[3].name: ...`.
 */
export function loadPluginConfig(file: string, cwd: string): PluginConfig {
  const base = loadCliConfig(file, cwd); // reads, parses and checks store, keys and profiles
  const path = resolve(cwd, file);
  const doc = (parseYaml(readFileSync(path, 'utf8')) ?? {}) as Record<string, unknown>;
  const list = doc.plugins ?? [];
  if (!Array.isArray(list)) {
    throw new SessionGateError('SG_ERR_CONFIG', `${file}: plugins: expected a list of plugin entries`);
  }
  const problems: string[] = [];
  const plugins: PluginSpec[] = [];
  const names = new Set<string>();
  list.forEach((entry: unknown, i) => {
    const parsed = pluginSpecSchema.safeParse(entry);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        problems.push(`${formatPath(['plugins', i, ...issue.path])}: ${issue.message}`);
      }
      return;
    }
    if (names.has(parsed.data.name)) {
      problems.push(`plugins[${i}].name: ${JSON.stringify(parsed.data.name)} is used twice`);
    }
    names.add(parsed.data.name);
    plugins.push(parsed.data);
  });
  if (problems.length > 0) throw new SessionGateError('SG_ERR_CONFIG', `${file}: ${problems.join('; ')}`);
  const out: PluginConfig = { file, dir: dirname(path), plugins };
  if (base.keys !== undefined) out.keys = base.keys;
  return out;
}

/**
 * The file a `users` or `credentials` command edits: `--file`, else the `setting` of the first
 * built-in plugin of `type` in `--config`, else the default (paths of the command line against
 * the working directory, paths of the config file against its folder).
 */
export function builtinFile(
  flags: { file?: string | undefined; configFile?: string | undefined },
  cwd: string,
  type: string,
  setting: string,
  fallback: string,
): string {
  if (flags.file !== undefined) return resolve(cwd, flags.file);
  if (flags.configFile === undefined) return resolve(cwd, fallback);
  const config = loadPluginConfig(flags.configFile, cwd);
  const spec = config.plugins.find((p) => p.runtime === 'builtin' && p.type === type);
  const value = spec?.config[setting];
  if (typeof value !== 'string') {
    throw new SessionGateError(
      'SG_ERR_CONFIG',
      spec
        ? `${flags.configFile}: plugin ${spec.name}: config.${setting} is required`
        : `${flags.configFile}: no plugin of type ${type} (give the file with --file PATH)`,
    );
  }
  return resolve(config.dir, value);
}

/** The key ring file: `--key-file`, else the config's `keys`, else `./var/keyring.json`. */
export function keyFileOf(
  flags: { keyFile?: string | undefined; configFile?: string | undefined },
  cwd: string,
): string {
  if (flags.keyFile !== undefined) return resolve(cwd, flags.keyFile);
  if (flags.configFile !== undefined) {
    const keys = loadCliConfig(flags.configFile, cwd).keys;
    if (keys !== undefined) return keys;
  }
  return resolve(cwd, DEFAULT_KEY_FILE);
}
