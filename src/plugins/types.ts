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

const CONNECTION = [
  'protocol',
  'client_ip',
  'client_hostname',
  'gateway_domain',
  'server_username',
  'server_domain',
];
const AUTHENTICATE = [...CONNECTION, 'connection_name', 'client_port', 'gateway_user', 'key_value_pairs'];

/** The arguments SPS passes to each hook, beyond session_id, cookie and session_cookie. */
export const HOOK_ARGUMENTS: Record<HookName, readonly string[]> = {
  authenticate: AUTHENTICATE,
  authorize: [...AUTHENTICATE, 'gateway_groups', 'server_ip', 'server_port', 'server_hostname'],
  get_password_list: [
    ...CONNECTION,
    'gateway_username',
    'gateway_password',
    'gateway_groups',
    'server_ip',
    'server_hostname',
    'server_port',
  ],
  get_private_key_list: [
    ...CONNECTION,
    'gateway_username',
    'gateway_password',
    'gateway_groups',
    'server_ip',
    'server_hostname',
    'server_port',
  ],
  authentication_completed: [],
  session_ended: [],
};

/**
 * Exactly the arguments SPS gives `hook`: every one of them present (unknown facts as null,
 * `key_value_pairs` as `{}`), so plugins that declare them without defaults work as on SPS.
 */
export function argumentsFor(hook: HookName, args: HookArgs): HookArgs {
  const out: Record<string, unknown> = {
    session_id: args.session_id,
    cookie: args.cookie,
    session_cookie: args.session_cookie,
  };
  const given = args as unknown as Record<string, unknown>;
  for (const name of HOOK_ARGUMENTS[hook]) {
    out[name] = given[name] ?? (name === 'key_value_pairs' ? {} : null);
  }
  return out as unknown as HookArgs;
}
