import type { JsonObject } from '../core/session-types.js';
import type { HOOK_TABLE, HookArgs, HookName, HookOf, PluginKind, Verdict } from './types.js';

type MaybePromise<T> = T | Promise<T>;

/** An SPS snake_case name in camelCase, as module plugins see it: `get_password_list` → `getPasswordList`. */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Head}${Capitalize<CamelCase<Tail>>}`
  : S;

/** Arguments of `authenticate`/`authorize` and the list hooks: SPS's arguments in camelCase. */
export type PluginArgs = { [K in keyof HookArgs as CamelCase<K>]: HookArgs[K] };

/** `authentication_completed` and `session_ended` get only these. */
export type SessionArgs = Pick<PluginArgs, 'sessionId' | 'cookie' | 'sessionCookie'>;

export interface CookieResult {
  cookie?: JsonObject;
  sessionCookie?: JsonObject;
}

export interface AaHookResult extends CookieResult {
  verdict: Verdict;
  /** `redirect`: the browser answers at that URL (an identity provider), see docs/plugins.md. */
  /** `otpauth`: the question enrols a TOTP secret; the page shows it as a QR code (browsers only). */
  question?: { key: string; prompt: string; disableEcho?: boolean; redirect?: string; otpauth?: string };
  gatewayUser?: string;
  gatewayGroups?: string[];
  additionalMetadata?: string;
  reason?: string;
  /** With ACCEPT: variables under `session.oauth.` or `session.custom.` to set. */
  sessionVariables?: Record<string, string>;
  /** With ACCEPT: the same, as secure (encrypted) variables. */
  secureVariables?: Record<string, string>;
}

export interface CredentialHookResult extends CookieResult {
  passwords?: string[];
  privateKeys?: [string, string][];
}

/** What every hook of a module plugin gets besides its arguments. */
export interface PluginContext {
  /** The plugin's name in the configuration. */
  name: string;
  /** The plugin's `config` from the configuration file. */
  config: Record<string, unknown>;
  /** A line for the gateway log, tagged with plugin, hook and session id. */
  log(message: string): void;
}

type Answer<H extends HookName> = (typeof HOOK_TABLE)[H]['answer'];

/** What a module plugin's hook H gets and returns, by what the hook answers (types.ts). */
type HookMethod<H extends HookName> =
  Answer<H> extends 'cookies'
    ? (args: SessionArgs, ctx: PluginContext) => MaybePromise<void | CookieResult>
    : (
        args: PluginArgs,
        ctx: PluginContext,
      ) => MaybePromise<Answer<H> extends 'verdict' ? AaHookResult : CredentialHookResult>;

/** The hooks of a plugin of kind K as the optional camelCase methods of a module plugin. */
type HookMethods<K extends PluginKind> = { [H in HookOf<K> as CamelCase<H>]?: HookMethod<H> };

/** A module plugin of kind `aa`: `authenticate`, `authorize`, `sessionEnded`. */
export interface AaPlugin extends HookMethods<'aa'> {
  kind: 'aa';
}

/**
 * A module plugin of kind `credentialstore`: `getPasswordList`, `getPrivateKeyList`,
 * `authenticationCompleted`, `sessionEnded`.
 */
export interface CredentialStorePlugin extends HookMethods<'credentialstore'> {
  kind: 'credentialstore';
}

export type ModulePlugin = AaPlugin | CredentialStorePlugin;

/**
 * Type a module plugin: the hooks of SPS in camelCase, with completion and type errors.
 * Export the result as the module's default export and name the file in the configuration
 * (`runtime: module, path: ./plugins/x.ts`).
 *
 * @example
 * ```ts
 * export default definePlugin({
 *   kind: 'aa',
 *   authenticate({ gatewayUser, cookie }) {
 *     const tries = Number(cookie.tries ?? 0) + 1;
 *     return { verdict: gatewayUser === 'alice' ? 'ACCEPT' : 'DENY', cookie: { tries } };
 *   },
 *   sessionEnded({ sessionId, cookie }, ctx) {
 *     ctx.log(`session ${sessionId} ended after ${cookie.tries} tries`);
 *   },
 * });
 * ```
 */
export function definePlugin(plugin: AaPlugin): AaPlugin;
export function definePlugin(plugin: CredentialStorePlugin): CredentialStorePlugin;
export function definePlugin(plugin: ModulePlugin): ModulePlugin {
  return plugin;
}

export type { PluginKind };
