import { z } from 'zod';
import { definePlugin, type AaHookResult, type AaPlugin } from '../define.js';
import { configPath, parsePluginConfig, requiredString } from './config.js';
import { WatchedFile } from './files.js';
import type { BuiltinEnvironment } from './environment.js';
import { MIN_PASSWORD_LENGTH, verifyPassword } from './password.js';
import { parseUsers, type Users } from './users-file.js';

const configSchema = z.strictObject({
  /** The users file (YAML), relative to the config file's folder. */
  users_file: requiredString('a path'),
  /** authorize: the user must be in at least one of these groups (none given = any user). */
  require_groups: z.array(z.string(), { error: 'expected a list of group names' }).default([]),
  /** The prompt of the NEEDINFO question when no password came with the call. */
  password_prompt: z.string().default('Password'),
  /** The shortest new password a user may choose at /sg/password (ASVS 2.1.1: 12). */
  min_password_length: z.int().min(1).max(1024).default(MIN_PASSWORD_LENGTH),
});

/** What the user is told on any failed logon: never whether the name exists. */
export const LOGON_FAILED = 'Invalid user name or password';

/**
 * The password question: asked with NEEDINFO when a call brings no `key_value_pairs.password`.
 */
export const PASSWORD_KEY = 'password';

/** The users file of a plugin, parsed again only when it changed on disk. */
export function watchUsers(path: string): WatchedFile<Users> {
  return new WatchedFile<Users>(
    path,
    (text) => parseUsers(text, path),
    () => new Map(),
  );
}

/**
 * `local-users` (aa): users and scrypt password hashes in a YAML file (see `users-file.ts`).
 *
 * authenticate: the user name is `gateway_user` (what the logon form or Basic auth gave), the
 * password `key_value_pairs.password` (asked for with NEEDINFO when absent). ACCEPT sets
 * `gateway_user` and `gateway_groups` from the file; any failure is DENY with one generic
 * reason, after the same scrypt work whether or not the user exists.
 *
 * authorize: ACCEPT when `gateway_user` exists, is not disabled, and (with `require_groups`)
 * is in at least one of the required groups.
 */
export function localUsers(config: Record<string, unknown>, env: BuiltinEnvironment): AaPlugin {
  const settings = parsePluginConfig(configSchema, config, env);
  const users = watchUsers(configPath(env, settings.users_file));

  return definePlugin({
    kind: 'aa',
    async authenticate({ gatewayUser, keyValuePairs }): Promise<AaHookResult> {
      const password = keyValuePairs?.[PASSWORD_KEY];
      if (password === undefined) {
        return {
          verdict: 'NEEDINFO',
          question: { key: PASSWORD_KEY, prompt: settings.password_prompt, disableEcho: true },
        };
      }
      const name = gatewayUser ?? '';
      const user = (await users.read()).get(name);
      // verifyPassword does the full scrypt work even without a stored hash.
      const ok = await verifyPassword(password, user?.password);
      if (!ok || !user || user.disabled || password === '') return { verdict: 'DENY', reason: LOGON_FAILED };
      return { verdict: 'ACCEPT', gatewayUser: name, gatewayGroups: [...user.groups] };
    },

    async authorize({ gatewayUser }): Promise<AaHookResult> {
      const name = gatewayUser ?? '';
      const user = (await users.read()).get(name);
      const inGroup =
        settings.require_groups.length === 0 || settings.require_groups.some((g) => user?.groups.includes(g));
      if (!user || user.disabled || !inGroup) return { verdict: 'DENY', reason: 'Access denied' };
      return { verdict: 'ACCEPT', gatewayUser: name, gatewayGroups: [...user.groups] };
    },

    sessionEnded() {},
  });
}
