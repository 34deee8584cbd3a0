import { z } from 'zod';
import type { JsonObject } from '../../core/session-types.js';
import {
  definePlugin,
  type CookieResult,
  type CredentialHookResult,
  type CredentialStorePlugin,
  type PluginArgs,
} from '../define.js';
import { configPath, parsePluginConfig, requiredString } from './config.js';
import {
  credentialKey,
  parseCredentials,
  type CredentialEntry,
  type Credentials,
} from './credentials-file.js';
import { WatchedFile } from './files.js';
import type { BuiltinEnvironment } from './environment.js';

const configSchema = z.strictObject({
  /** The sealed credentials file, relative to the config file's folder. */
  credentials_file: requiredString('a path'),
  /** When checked-out credentials are checked in. */
  check_in_trigger: z
    .enum(['authentication_completed', 'session_ended'], {
      error: 'expected authentication_completed or session_ended',
    })
    .default('authentication_completed'),
  /** The account looked up is `<prefix><server_username><suffix>`. */
  account_prefix: z.string().default(''),
  account_suffix: z.string().default(''),
});

type CredentialType = 'password' | 'private_key';

interface Checkout {
  account: string;
  asset: string;
  type: CredentialType;
}

function checkoutsOf(cookie: JsonObject): Checkout[] {
  const list = Array.isArray(cookie.checked_out) ? cookie.checked_out : [];
  return list.filter(
    (c): c is JsonObject & Checkout =>
      typeof c === 'object' &&
      c !== null &&
      !Array.isArray(c) &&
      typeof c.account === 'string' &&
      typeof c.asset === 'string' &&
      (c.type === 'password' || c.type === 'private_key'),
  );
}

/**
 * `file-credentials` (credentialstore): passwords and private keys per `account@asset` in a
 * file sealed with the gateway key ring (see `credentials-file.ts`; edit it with
 * `sessiongate credentials`).
 *
 * get_password_list / get_private_key_list: the account is `server_username` with the
 * configured prefix and suffix; the asset is the first of `server_hostname`, `server_ip`,
 * `server_domain` that has an entry. Each checkout is recorded in the cookie (names only,
 * never a secret) and in the audit log; check-in happens at `authentication_completed` or at
 * `session_ended` (`check_in_trigger`), and at `session_ended` for anything still out (target
 * authentication never succeeded).
 */
export function fileCredentials(
  config: Record<string, unknown>,
  env: BuiltinEnvironment,
): CredentialStorePlugin {
  const s = parsePluginConfig(configSchema, config, env);
  const path = configPath(env, s.credentials_file);
  const file = new WatchedFile<Credentials>(
    path,
    (text) => parseCredentials(text, env.keyring, path),
    () => new Map(),
  );

  function audit(sessionId: string, c: Checkout, action: 'checkout' | 'checkin', trigger?: string): void {
    const fields: Record<string, unknown> = {
      audit: true,
      plugin: env.name,
      sessionId,
      action,
      account: c.account,
      asset: c.asset,
      credential: c.type,
    };
    if (trigger !== undefined) fields.trigger = trigger;
    env.logger.info(fields, `credential ${action}`);
  }

  async function lookup(
    args: PluginArgs,
  ): Promise<{ account: string; asset: string; entry: CredentialEntry } | undefined> {
    if (!args.serverUsername) return undefined;
    const account = `${s.account_prefix}${args.serverUsername}${s.account_suffix}`;
    const entries = await file.read();
    for (const asset of [args.serverHostname, args.serverIp, args.serverDomain]) {
      if (!asset) continue;
      const entry = entries.get(credentialKey(account, asset));
      if (entry) return { account, asset: asset.toLowerCase(), entry };
    }
    return undefined;
  }

  function checkOut(
    args: PluginArgs,
    found: { account: string; asset: string },
    type: CredentialType,
  ): JsonObject {
    const out = checkoutsOf(args.cookie);
    const c: Checkout = { account: found.account, asset: found.asset, type };
    if (!out.some((o) => o.account === c.account && o.asset === c.asset && o.type === c.type)) out.push(c);
    audit(args.sessionId, c, 'checkout');
    return { ...args.cookie, checked_out: out as unknown as JsonObject[] };
  }

  function checkInAll(sessionId: string, cookie: JsonObject, trigger: string): JsonObject {
    for (const c of checkoutsOf(cookie)) audit(sessionId, c, 'checkin', trigger);
    return { ...cookie, checked_out: [] };
  }

  return definePlugin({
    kind: 'credentialstore',
    async getPasswordList(args): Promise<CredentialHookResult> {
      const found = await lookup(args);
      if (!found || found.entry.passwords.length === 0) return { passwords: [] };
      return { passwords: [...found.entry.passwords], cookie: checkOut(args, found, 'password') };
    },

    async getPrivateKeyList(args): Promise<CredentialHookResult> {
      const found = await lookup(args);
      if (!found || found.entry.private_keys.length === 0) return { privateKeys: [] };
      return {
        privateKeys: found.entry.private_keys.map(([t, k]) => [t, k] as [string, string]),
        cookie: checkOut(args, found, 'private_key'),
      };
    },

    authenticationCompleted({ sessionId, cookie }): CookieResult {
      const done = { ...cookie, target_authenticated: true };
      if (s.check_in_trigger !== 'authentication_completed') return { cookie: done };
      return { cookie: checkInAll(sessionId, done, 'authentication_completed') };
    },

    sessionEnded({ sessionId, cookie }): CookieResult {
      return { cookie: checkInAll(sessionId, cookie, 'session_ended') };
    },
  });
}
