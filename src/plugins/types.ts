import type { JsonObject } from '../core/session-types.js';
import { toCamel } from './case.js';

export const PLUGIN_KINDS = ['aa', 'credentialstore'] as const;
/** SPS plugin types: authentication/authorization, or credential store. */
export type PluginKind = (typeof PLUGIN_KINDS)[number];

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
  /**
   * Answered elsewhere: the browser is sent to this URL (an identity provider) and the answer
   * comes back to `/sg/oidc/callback` as that request's query string.
   */
  redirect?: string;
  /**
   * The question enrols a second factor: an `otpauth://` URI the logon page shows as a QR code
   * and a key to type, answered with a first code. Browsers only; never stored with the session.
   */
  otpauth?: string;
}

/** What an `aa` hook returns (SPS names). */
export interface AaResult {
  verdict: Verdict;
  question?: Question;
  gateway_user?: string;
  gateway_groups?: string[];
  additional_metadata?: string;
  reason?: string;
  /** With ACCEPT: session variables to set (names under `session.oauth.` or `session.custom.`). */
  session_variables?: Record<string, string>;
  /** With ACCEPT: the same, kept as secure (encrypted) variables, e.g. tokens. */
  secure_variables?: Record<string, string>;
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

/** The connection facts every argument list below starts from. */
const CONNECTION = [
  'protocol',
  'client_ip',
  'client_hostname',
  'gateway_domain',
  'server_username',
  'server_domain',
] as const;
const AUTHENTICATE = [
  ...CONNECTION,
  'connection_name',
  'client_port',
  'gateway_user',
  'key_value_pairs',
] as const;
const CREDENTIALS = [
  ...CONNECTION,
  'gateway_username',
  'gateway_password',
  'gateway_groups',
  'server_ip',
  'server_hostname',
  'server_port',
] as const;

/**
 * Every hook, by its SPS (wire) name, in the order a session meets them: the plugin kinds that have
 * it, the arguments SPS passes beyond session_id, cookie and session_cookie, and what it
 * answers (`verdict`: an aa result; `credentials`: a credential list; `cookies`: only the two
 * cookies). The hook names, the hooks of each kind, the argument lists and the methods of a
 * module plugin (define.ts) are all derived from this table.
 */
export const HOOK_TABLE = {
  authenticate: { kinds: ['aa'], args: AUTHENTICATE, answer: 'verdict' },
  authorize: {
    kinds: ['aa'],
    args: [...AUTHENTICATE, 'gateway_groups', 'server_ip', 'server_port', 'server_hostname'],
    answer: 'verdict',
  },
  get_password_list: { kinds: ['credentialstore'], args: CREDENTIALS, answer: 'credentials' },
  get_private_key_list: { kinds: ['credentialstore'], args: CREDENTIALS, answer: 'credentials' },
  authentication_completed: { kinds: ['credentialstore'], args: [], answer: 'cookies' },
  session_ended: { kinds: ['aa', 'credentialstore'], args: [], answer: 'cookies' },
} as const satisfies Record<
  string,
  {
    kinds: readonly PluginKind[];
    args: readonly (keyof ConnectionFacts)[];
    answer: 'verdict' | 'credentials' | 'cookies';
  }
>;

export type HookName = keyof typeof HOOK_TABLE;

/** The hooks a plugin of kind K has. */
export type HookOf<K extends PluginKind> = {
  [H in HookName]: K extends (typeof HOOK_TABLE)[H]['kinds'][number] ? H : never;
}[HookName];
export type AaHook = HookOf<'aa'>;
export type CredentialHook = HookOf<'credentialstore'>;

function hooksOf(kind: PluginKind): readonly HookName[] {
  return (Object.keys(HOOK_TABLE) as HookName[]).filter((h) =>
    (HOOK_TABLE[h].kinds as readonly PluginKind[]).includes(kind),
  );
}

/** The hooks of each kind, in the table's order. */
export const HOOKS: Readonly<Record<PluginKind, readonly HookName[]>> = {
  aa: hooksOf('aa'),
  credentialstore: hooksOf('credentialstore'),
};

/** Whether plugins of `kind` have a hook called `name` (SPS name). */
export function hasHook(kind: PluginKind, name: string): name is HookName {
  return (HOOKS[kind] as readonly string[]).includes(name);
}

/**
 * The properties of a module plugin of `kind` named like a hook it does not have in that form:
 * another kind's hook (`getPasswordList` on an aa plugin) or an SPS snake_case name
 * (`session_ended`; module plugins use camelCase). Such a method would never be called, so it is
 * refused when the plugin is registered; other properties are the plugin's own (helpers, data).
 */
export function misnamedHooks(kind: PluginKind, properties: readonly string[]): string[] {
  const own = new Set(HOOKS[kind].map(toCamel));
  const hookLike = new Set(Object.keys(HOOK_TABLE).flatMap((h) => [h, toCamel(h)]));
  return properties.filter((p) => hookLike.has(p) && !own.has(p));
}

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
  for (const name of HOOK_TABLE[hook].args) {
    out[name] = given[name] ?? (name === 'key_value_pairs' ? {} : null);
  }
  return out as unknown as HookArgs;
}
