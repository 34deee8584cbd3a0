import type { JsonObject } from '../core/session-types.js';

export const PLUGIN_KINDS = ['aa', 'credentialstore'] as const;
/** SPS plugin types: authentication/authorization, or credential store. */
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/** The hooks of each kind, with SPS's names (the wire names). */
export const HOOKS: Record<PluginKind, readonly string[]> = {
  aa: ['authenticate', 'authorize', 'session_ended'],
  credentialstore: ['get_password_list', 'get_private_key_list', 'authentication_completed', 'session_ended'],
};

export type AaHook = 'authenticate' | 'authorize' | 'session_ended';
export type CredentialHook =
  'get_password_list' | 'get_private_key_list' | 'authentication_completed' | 'session_ended';
export type HookName = AaHook | CredentialHook;

export const VERDICTS = ['ACCEPT', 'DENY', 'NEEDINFO', 'NONE'] as const;
export type Verdict = (typeof VERDICTS)[number];

/**
 * The connection facts a hook receives, with SPS's argument names. Which of them a hook gets
 * depends on the hook (see `argumentsFor`); `cookie` and `session_cookie` are always there.
 */
export interface HookArgs {
  session_id: string;
  cookie: JsonObject;
  session_cookie: JsonObject;
  protocol?: string;
  connection_name?: string;
  client_ip?: string;
  client_port?: number;
  client_hostname?: string | null;
  gateway_user?: string | null;
  gateway_username?: string | null;
  gateway_password?: string | null;
  gateway_groups?: string[] | null;
  gateway_domain?: string | null;
  server_username?: string | null;
  server_ip?: string | null;
  server_hostname?: string | null;
  server_port?: number | null;
  server_domain?: string | null;
  key_value_pairs?: Record<string, string>;
}

/** Facts the caller knows about the connection; the host adds session_id and the cookies. */
export type ConnectionFacts = Omit<HookArgs, 'session_id' | 'cookie' | 'session_cookie'>;

export interface Question {
  key: string;
  prompt: string;
  disable_echo?: boolean;
}

/** What an `aa` hook returns (SPS names). */
export interface AaResult {
  verdict: Verdict;
  question?: Question;
  gateway_user?: string;
  gateway_groups?: string[];
  additional_metadata?: string;
  reason?: string;
  cookie?: JsonObject;
  session_cookie?: JsonObject;
}

/** What a credential-store list hook returns. */
export interface CredentialResult {
  passwords?: string[];
  /** `[type, pem]` pairs, e.g. `['ssh-rsa', '-----BEGIN ...']`, tried in order. */
  private_keys?: [string, string][];
  cookie?: JsonObject;
  session_cookie?: JsonObject;
}

/** Any hook's raw result before the host checks it. */
export type HookResult = (AaResult | CredentialResult | Record<string, unknown>) | null | undefined;

/** The arguments each hook receives: the two completion hooks get only the three session ones. */
const SESSION_ONLY = new Set<HookName>(['authentication_completed', 'session_ended']);
const AA_ONLY = ['gateway_user'] as const;
const CREDENTIAL_ONLY = ['gateway_username', 'gateway_password'] as const;

export function argumentsFor(kind: PluginKind, hook: HookName, args: HookArgs): HookArgs {
  const base = { session_id: args.session_id, cookie: args.cookie, session_cookie: args.session_cookie };
  if (SESSION_ONLY.has(hook)) return base;
  const out: Record<string, unknown> = { ...args };
  for (const k of kind === 'aa' ? CREDENTIAL_ONLY : AA_ONLY) delete out[k];
  if (kind === 'credentialstore') delete out.key_value_pairs;
  return out as unknown as HookArgs;
}
