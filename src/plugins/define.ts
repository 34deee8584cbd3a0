import type { JsonObject } from '../core/session-types.js';
import type { PluginKind, Verdict } from './types.js';

type MaybePromise<T> = T | Promise<T>;

/** Arguments of `authenticate`/`authorize` and the list hooks, in camelCase. */
export interface PluginArgs {
  sessionId: string;
  cookie: JsonObject;
  sessionCookie: JsonObject;
  protocol?: string;
  connectionName?: string;
  clientIp?: string;
  clientPort?: number;
  clientHostname?: string | null;
  gatewayUser?: string | null;
  gatewayUsername?: string | null;
  gatewayPassword?: string | null;
  gatewayGroups?: string[] | null;
  gatewayDomain?: string | null;
  serverUsername?: string | null;
  serverIp?: string | null;
  serverHostname?: string | null;
  serverPort?: number | null;
  serverDomain?: string | null;
  keyValuePairs?: Record<string, string>;
}

/** `authentication_completed` and `session_ended` get only these. */
export interface SessionArgs {
  sessionId: string;
  cookie: JsonObject;
  sessionCookie: JsonObject;
}

export interface CookieResult {
  cookie?: JsonObject;
  sessionCookie?: JsonObject;
}

export interface AaHookResult extends CookieResult {
  verdict: Verdict;
  question?: { key: string; prompt: string; disableEcho?: boolean };
  gatewayUser?: string;
  gatewayGroups?: string[];
  additionalMetadata?: string;
  reason?: string;
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

export interface AaPlugin {
  kind: 'aa';
  authenticate?(args: PluginArgs, ctx: PluginContext): MaybePromise<AaHookResult>;
  authorize?(args: PluginArgs, ctx: PluginContext): MaybePromise<AaHookResult>;
  sessionEnded?(args: SessionArgs, ctx: PluginContext): MaybePromise<void | CookieResult>;
}

export interface CredentialStorePlugin {
  kind: 'credentialstore';
  getPasswordList?(args: PluginArgs, ctx: PluginContext): MaybePromise<CredentialHookResult>;
  getPrivateKeyList?(args: PluginArgs, ctx: PluginContext): MaybePromise<CredentialHookResult>;
  authenticationCompleted?(args: SessionArgs, ctx: PluginContext): MaybePromise<void | CookieResult>;
  sessionEnded?(args: SessionArgs, ctx: PluginContext): MaybePromise<void | CookieResult>;
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
export function definePlugin<P extends ModulePlugin>(plugin: P): P {
  return plugin;
}

export type { PluginKind };
