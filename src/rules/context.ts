import type { IncomingMessage } from 'node:http';
import { findCookie } from '../core/cookie-header.js';
import { SessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SessionId } from '../core/ids.js';
import { SESSION_STATES, type SessionRecord, type SessionState } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';
import type { VariableReader } from '../session/session-data.js';
import type { HeaderEditor, RuleContext, RuleHttp, RuleSession } from './define.js';
import type { RuleEvent } from './events.js';
import { ipMatches } from './ip.js';

/** A response a rule asked for (`http.respond`). */
export interface RuleResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The HTTP side of a flow, shared by all events of one request. */
export interface HttpScope {
  req: IncomingMessage;
  /** Header changes for the upstream request (null = remove). */
  requestHeaders: Record<string, string | null>;
  /** Set by `respond`; the gateway sends it and stops the request. */
  responded?: RuleResponse;
  /** In HTTP_RESPONSE: the upstream's answer, editable in place. */
  response?: { status: number; headers: Record<string, string | string[]> };
  /** The request view, built once per request on first use. */
  view?: RuleHttp;
}

/** What a context is built from. `sessionId` follows the flow (create -flow, rotation). */
export interface RuleScope {
  engine: SessionEngine;
  logger: Logger;
  sessionId?: string | undefined;
  http?: HttpScope;
  /** ACCESS_SESSION_CLOSED: the final variables of the closed session. */
  snapshot?: VariableReader;
  policy?: { agentId?: string; result?: 'allow' | 'deny' | 'redirect' };
  /** Set when a rule removed the flow's session. */
  removed?: boolean;
  /**
   * What this request already knows of its session: the cookie's token and the record the
   * gateway validated (record undefined: the token names no live session). Reads of the
   * flow's own session come from it instead of the store until a rule writes. Absent: unknown.
   */
  known?: { token?: string | undefined; record?: SessionRecord | undefined };
  /** A rule changed a session: `known` is no longer current. */
  dirty?: boolean;
}

// Contexts are classes, not object literals of closures: one is built per rule per event on
// the request path, and closures cost an allocation each (and under tsx a name-defining call
// each) where prototype methods cost nothing. Methods are called on their object
// (`ctx.session.data.get(...)`), as every example does.

/** Header edits on the request to the upstream; the client's request itself is not changed. */
class RequestHeaders implements HeaderEditor {
  constructor(private readonly scope: HttpScope) {}

  get(name: string): string | undefined {
    const k = name.toLowerCase();
    if (Object.hasOwn(this.scope.requestHeaders, k)) return this.scope.requestHeaders[k] ?? undefined;
    const v = this.scope.req.headers[k];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  insert(name: string, value: string): void {
    const current = this.get(name);
    this.scope.requestHeaders[name.toLowerCase()] = current === undefined ? value : `${current}, ${value}`;
  }

  replace(name: string, value: string): void {
    this.scope.requestHeaders[name.toLowerCase()] = value;
  }

  remove(name: string): void {
    this.scope.requestHeaders[name.toLowerCase()] = null;
  }
}

/** HTTP_RESPONSE: edits the upstream's response headers in place, before they are sent. */
class ResponseHeaders implements HeaderEditor {
  constructor(private readonly headers: Record<string, string | string[]>) {}

  get(name: string): string | undefined {
    const v = this.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  insert(name: string, value: string): void {
    const k = name.toLowerCase();
    const v = this.headers[k];
    this.headers[k] = v === undefined ? value : [...[v].flat(), value];
  }

  replace(name: string, value: string): void {
    this.headers[name.toLowerCase()] = value;
  }

  remove(name: string): void {
    delete this.headers[name.toLowerCase()];
  }
}

/** A path with nothing URL parsing would change: no dot segments, empty segments or escapes. */
const PLAIN_PATH = /^(?:\/[A-Za-z0-9_~!$&'()*+,;=:@-][A-Za-z0-9._~!$&'()*+,;=:@-]*)*\/?$/;

/** Printable ASCII only: URLSearchParams reads it exactly as URL parsing would. */
const PLAIN_QUERY = /^[\x21-\x7e]*$/;

/** The request as rules see it; parts are parsed on first use. */
class HttpView implements RuleHttp {
  readonly method: string;
  readonly uri: string;
  readonly host: string;
  readonly headers: HeaderEditor;
  readonly response?: { status: number; headers: HeaderEditor };
  private parsedPath?: string;
  private parsedQuery?: URLSearchParams;

  constructor(private readonly scope: HttpScope) {
    const req = scope.req;
    this.method = req.method ?? 'GET';
    this.uri = req.url ?? '/';
    this.host = req.headers.host ?? '';
    this.headers = new RequestHeaders(scope);
    if (scope.response)
      this.response = { status: scope.response.status, headers: new ResponseHeaders(scope.response.headers) };
  }

  get path(): string {
    if (this.parsedPath === undefined) {
      const [raw] = this.split();
      // Anything unusual gets the WHATWG URL parser's normalisation, as before the fast path.
      this.parsedPath = PLAIN_PATH.test(raw) ? raw : new URL(this.uri, 'http://gateway').pathname;
    }
    return this.parsedPath;
  }

  get query(): URLSearchParams {
    if (this.parsedQuery === undefined) {
      const [, raw] = this.split();
      // URL parsing percent-encodes non-ASCII before decoding; URLSearchParams alone does not.
      this.parsedQuery = PLAIN_QUERY.test(raw)
        ? new URLSearchParams(raw)
        : new URL(this.uri, 'http://gateway').searchParams;
    }
    return this.parsedQuery;
  }

  /**
   * The request target's path and `?query`, without a fragment, as URL parsing cuts them
   * (the query keeps its `?`: URLSearchParams drops exactly one, so `??a` stays `?a`).
   */
  private split(): [string, string] {
    const hash = this.uri.indexOf('#');
    const target = hash < 0 ? this.uri : this.uri.slice(0, hash);
    const q = target.indexOf('?');
    return q < 0 ? [target, ''] : [target.slice(0, q), target.slice(q)];
  }

  cookie(name: string): string | undefined {
    return findCookie(this.scope.req.headers.cookie ?? '', name);
  }

  respond(status: number, options: { headers?: Record<string, string>; body?: string } = {}): void {
    if (this.scope.responded) throw misuse('respond may be called only once per request');
    if (!Number.isInteger(status) || status < 100 || status > 599) throw misuse(`invalid status ${status}`);
    this.scope.responded = { status, headers: options.headers ?? {}, body: options.body ?? '' };
  }
}

function httpOf(scope: HttpScope): RuleHttp {
  if (scope.response) return new HttpView(scope);
  return (scope.view ??= new HttpView(scope));
}

/** ACCESS::session for one rule run; without `sid` the verbs act on the flow's session. */
class FlowSession implements RuleSession {
  readonly data: FlowData;

  constructor(
    readonly scope: RuleScope,
    readonly event: RuleEvent,
  ) {
    this.data = new FlowData(this);
  }

  get closed(): boolean {
    return this.event === 'ACCESS_SESSION_CLOSED';
  }

  target(sid?: string): string {
    const id = sid ?? this.scope.sessionId;
    if (!id) throw misuse(`${this.event}: this flow has no session; pass sid`);
    return id;
  }

  sid(): SessionId | undefined {
    return this.scope.sessionId as SessionId | undefined;
  }

  async create(o: { timeout?: number; lifetime?: number; flow?: boolean } = {}): Promise<SessionId> {
    const { id } = await this.scope.engine.create({
      state: 'allow',
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      ...(o.lifetime !== undefined ? { lifetime: o.lifetime } : {}),
    });
    if (o.flow) this.scope.sessionId = id;
    return id;
  }

  async modify(o: { sid?: string; timeout?: number; lifetime?: number; remaining?: number }): Promise<void> {
    const { sid, ...rest } = o;
    this.scope.dirty = true;
    await this.scope.engine.modify(this.target(sid), rest);
  }

  async exists(token?: string, o: { state?: SessionState } = {}): Promise<boolean> {
    const { scope } = this;
    const known = scope.dirty ? undefined : scope.known;
    if (known && token !== undefined && token === known.token && knownState(o.state)) {
      return known.record !== undefined && (o.state === undefined || known.record.state === o.state);
    }
    if (token === undefined) return scope.sessionId ? scope.engine.existsById(scope.sessionId, o) : false;
    try {
      return await scope.engine.exists(token, o);
    } catch {
      return false; // a malformed cookie value names no session
    }
  }

  async remove(sid?: string): Promise<void> {
    const { scope } = this;
    if (this.closed && sid === undefined) return;
    scope.dirty = true;
    await scope.engine.remove(this.target(sid));
    if (sid === undefined || sid === scope.sessionId) scope.removed = true;
  }
}

/** `ACCESS::session data get|set`. */
class FlowData {
  constructor(private readonly session: FlowSession) {}

  async get(
    key: string,
    o: { sid?: string; secure?: boolean; config?: boolean } = {},
  ): Promise<string | undefined> {
    const { scope } = this.session;
    if (this.session.closed && o.sid === undefined && scope.snapshot) return scope.snapshot.get(key, o);
    const record = scope.dirty ? undefined : scope.known?.record;
    if (record && (o.sid === undefined || o.sid === record.id) && record.id === scope.sessionId) {
      return scope.engine.data.fromRecord(record, key, o);
    }
    return scope.engine.data.get(this.session.target(o.sid), key, o);
  }

  async set(key: string, value = '', o: { sid?: string; secure?: boolean } = {}): Promise<void> {
    const { scope } = this.session;
    if (this.session.closed && o.sid === undefined)
      throw misuse('ACCESS_SESSION_CLOSED: the session has ended');
    scope.dirty = true;
    await scope.engine.data.set(this.session.target(o.sid), key, value, o);
  }
}

const IP = { matches: ipMatches };

/** The gateway's clock as rules read it. */
class RuleClock {
  constructor(private readonly engine: SessionEngine) {}
  now(): number {
    return this.engine.clock.now();
  }
  seconds(): number {
    return Math.floor(this.engine.clock.now() / 1000);
  }
}

class FlowContext implements RuleContext {
  readonly ip = IP;
  private sessionView: FlowSession | undefined;
  private clockView: RuleClock | undefined;
  private noPolicy: { agentId?: string; result?: 'allow' | 'deny' | 'redirect' } | undefined;

  constructor(
    readonly event: RuleEvent,
    readonly rule: string,
    private readonly scope: RuleScope,
  ) {}

  // Built when first read: most rules touch one or two of these.
  get session(): FlowSession {
    return (this.sessionView ??= new FlowSession(this.scope, this.event));
  }

  get clock(): RuleClock {
    return (this.clockView ??= new RuleClock(this.scope.engine));
  }

  get policy(): { agentId?: string; result?: 'allow' | 'deny' | 'redirect' } {
    return this.scope.policy ?? (this.noPolicy ??= {});
  }

  get http(): RuleHttp {
    if (!this.scope.http) throw misuse(`${this.event} has no HTTP context (no connection)`);
    return httpOf(this.scope.http);
  }

  log(message: string): void {
    this.scope.logger.info({ rule: this.rule, event: this.event, sessionId: this.scope.sessionId }, message);
  }
}

/** Build the context one rule handler sees for one event. */
export function ruleContext(event: RuleEvent, rule: string, scope: RuleScope): RuleContext {
  return new FlowContext(event, rule, scope);
}

/** Unknown state names go to the engine, which rejects them with its typed error. */
function knownState(state: SessionState | undefined): boolean {
  return state === undefined || SESSION_STATES.includes(state);
}

/** A rule that used the context wrongly; the rule set reports it as that rule's failure. */
function misuse(message: string): SessionGateError {
  return new SessionGateError('SG_ERR_RULE_FAILED', message);
}
