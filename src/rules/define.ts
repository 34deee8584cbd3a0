import type { SessionId, SessionToken } from '../core/ids.js';
import type { SessionState } from '../core/session-types.js';
import type { RuleEvent } from './events.js';

/** Header changes on the request to the upstream (or, in HTTP_RESPONSE, on the response). */
export interface HeaderEditor {
  get(name: string): string | undefined;
  /** Add a header (APM `HTTP::header insert`); an existing one gets the value appended. */
  insert(name: string, value: string): void;
  /** Set a header, replacing any value (APM `HTTP::header replace`). */
  replace(name: string, value: string): void;
  remove(name: string): void;
}

/** The HTTP side of an event (absent in ACCESS_SESSION_CLOSED). */
export interface RuleHttp {
  method: string;
  /** Path without the query. */
  path: string;
  query: URLSearchParams;
  /** Path and query, as requested. */
  uri: string;
  host: string;
  /** Request headers; changes go to the upstream. */
  headers: HeaderEditor;
  /** The value of a request cookie (APM `HTTP::cookie value NAME`). */
  cookie(name: string): string | undefined;
  /** Answer the request from the gateway (APM `HTTP::respond` / `ACCESS::respond`); once per request. */
  respond(status: number, options?: { headers?: Record<string, string>; body?: string }): void;
  /** In HTTP_RESPONSE: the upstream's status and response headers. */
  response?: { status: number; headers: HeaderEditor };
}

/** APM's `ACCESS::session` verbs; without `sid` they act on the session of the current flow. */
export interface RuleSession {
  /** The current flow's session id (APM `ACCESS::session sid`), if it has one. */
  sid(): SessionId | undefined;
  /** `create [-flow] -timeout -lifetime`: with `flow: true` the new session becomes this flow's. */
  create(options?: { timeout?: number; lifetime?: number; flow?: boolean }): Promise<SessionId>;
  modify(options: { sid?: string; timeout?: number; lifetime?: number; remaining?: number }): Promise<void>;
  /** `exists [-state_X] SID`: the argument is a cookie value (token); none = this flow's session. */
  exists(token?: SessionToken | string, options?: { state?: SessionState }): Promise<boolean>;
  data: {
    get(
      key: string,
      options?: { sid?: string; secure?: boolean; config?: boolean },
    ): Promise<string | undefined>;
    set(key: string, value?: string, options?: { sid?: string; secure?: boolean }): Promise<void>;
  };
  /** `remove`: ends the session (reason `removed`); in ACCESS_SESSION_STARTED it refuses it. */
  remove(sid?: string): Promise<void>;
}

/** What every handler gets. */
export interface RuleContext {
  event: RuleEvent;
  /** The rule file the handler comes from. */
  rule: string;
  session: RuleSession;
  /** APM `ACCESS::policy agent_id` and `ACCESS::policy result` where they apply. */
  policy: { agentId?: string; result?: 'allow' | 'deny' | 'redirect' };
  /** The request; reading it in ACCESS_SESSION_CLOSED throws (there is no connection). */
  http: RuleHttp;
  /** APM `IP::addr A equals NET/BITS`. */
  ip: { matches(address: string | undefined | null, cidr: string): boolean };
  /** The gateway's clock (APM `clock seconds`). */
  clock: { now(): number; seconds(): number };
  /** A line in the gateway log tagged with rule, event and session id (APM `log local0.`). */
  log(message: string): void;
}

/** Returning 'stop' ends the chain: later rules on this event do not run. */
export type RuleHandler = (ctx: RuleContext) => void | 'stop' | Promise<void | 'stop'>;

export type Rules = Partial<Record<RuleEvent, RuleHandler>>;

/**
 * Type a rule file: handlers by APM event name. Export the result as the default export and
 * list the file under `rules:` (global) or a route's `rules:`.
 *
 * @example
 * ```ts
 * export default defineRules({
 *   async ACCESS_ACL_ALLOWED(ctx) {
 *     ctx.http.headers.insert('X-USERNAME', (await ctx.session.data.get('session.logon.last.username')) ?? '');
 *   },
 * });
 * ```
 */
export function defineRules(rules: Rules): Rules {
  return rules;
}
