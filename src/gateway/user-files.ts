import { resolve } from 'node:path';
import { ModuleRuntime } from '../plugins/runtimes/module.js';
import { loadRuleFiles, RuleLoadError, type LoadedRule } from '../rules/ruleset.js';
import { ConfigError, type LoadedConfig } from './config/load.js';

type ConfigPath = (string | number)[];

/**
 * Load the operator's code files of a configuration — module plugins and rule files — as
 * `serve` does before it opens anything, and `check-config` does to check them. A file that does
 * not load is a problem at its place in the configuration, `rules.1: ./rules/x.ts: message
 * (line N)`; all of them are reported together in one ConfigError. Each file is imported once
 * (plugins load again later from Node's module cache). Returns the rule files by name.
 *
 * @example
 * ```ts
 * const rules = await loadUserFiles(loadConfig('./sessiongate.yaml'));
 * ```
 */
export async function loadUserFiles(loaded: LoadedConfig): Promise<Map<string, LoadedRule>> {
  const { config, baseDir } = loaded;
  const problems: string[] = [];
  const at = (path: ConfigPath, message: string) =>
    problems.push(`${path.join('.')}: ${message}${loaded.lineOf?.(path) ?? ''}`);
  for (const [i, spec] of config.plugins.entries()) {
    if (spec.runtime !== 'module' || spec.path === undefined) continue;
    const path = resolve(baseDir, spec.path);
    try {
      await ModuleRuntime.load(path, spec.name, spec.config);
    } catch (err) {
      // The runtime names the file by its absolute path: the configuration's own spelling reads better.
      const message = (err as Error).message.replace(`${path}: `, '');
      at(['plugins', i, 'path'], `${spec.path}: ${message}`);
    }
  }
  const rules = new Map<string, LoadedRule>();
  const failed = new Set<string>();
  for (const [path, file] of rulePlaces(loaded)) {
    if (rules.has(file) || failed.has(file)) continue;
    try {
      const [rule] = await loadRuleFiles([file], baseDir);
      rules.set(file, rule!);
    } catch (err) {
      if (!(err instanceof RuleLoadError)) throw err;
      failed.add(file);
      at(path, err.message);
    }
  }
  if (problems.length > 0) throw new ConfigError(loaded.file, problems);
  return rules;
}

/** Every rule file named in the configuration, with where: global rules first, then each route's. */
function rulePlaces(loaded: LoadedConfig): [ConfigPath, string][] {
  const { config } = loaded;
  return [
    ...config.rules.map((file, i): [ConfigPath, string] => [['rules', i], file]),
    ...config.routes.flatMap((route, r) =>
      route.rules.map((file, i): [ConfigPath, string] => [['routes', r, 'rules', i], file]),
    ),
  ];
}
