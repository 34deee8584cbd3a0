import { resolve } from 'node:path';
import { z } from 'zod';
import { SessionGateError } from '../../core/errors.js';
import type { BuiltinEnvironment } from './environment.js';

/**
 * Check a built-in plugin's `config` when the plugin is built, so a mistake stops the gateway
 * at start with one line such as `plugin users: config.users_file: required`.
 */
export function parsePluginConfig<S extends z.ZodType>(
  schema: S,
  config: Record<string, unknown>,
  env: BuiltinEnvironment,
): z.infer<S> {
  const parsed = schema.safeParse(config);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0]!;
  const where = ['config', ...first.path.map(String)].join('.');
  const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more)` : '';
  throw new SessionGateError('SG_ERR_CONFIG', `plugin ${env.name}: ${where}: ${first.message}${more}`);
}

/** A path from a plugin's config, relative to the config file's folder. */
export function configPath(env: BuiltinEnvironment, path: string): string {
  return resolve(env.baseDir, path);
}

/** A required string setting: "required" when absent, "expected ..." when of another type. */
export function requiredString(what = 'a string'): z.ZodString {
  return z.string({ error: (issue) => (issue.input === undefined ? 'required' : `expected ${what}`) });
}
