import type { IncomingMessage } from 'node:http';
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

function requestEditor(scope: HttpScope): HeaderEditor {
  const read = (name: string): string | undefined => {
    const k = name.toLowerCase();
    if (Object.hasOwn(scope.requestHeaders, k)) return scope.requestHeaders[k] ?? undefined;
    const v = scope.req.headers[k];
    return Array.isArray(v) ? v.join(', ') : v;
  };
  return {
    get: read,
    insert: (name, value) => {
      const current = read(name);
      scope.requestHeaders[name.toLowerCase()] = current === undefined ? value : `${current}, ${value}`;
    },
    replace: (name, value) => void (scope.requestHeaders[name.toLowerCase()] = value),
    remove: (name) => void (scope.requestHeaders[name.toLowerCase()] = null),
  };
}

function responseEditor(headers: Record<string, string | string[]>): HeaderEditor {
  return {
    get: (name) => {
      const v = headers[name.toLowerCase()];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    insert: (name, value) => {
      const k = name.toLowerCase();
      const v = headers[k];
      headers[k] = v === undefined ? value : [...[v].flat(), value];
    },
    replace: (name, value) => void (headers[name.toLowerCase()] = value),
    remove: (name) => void delete headers[name.toLowerCase()],
  };
}

function httpOf(scope: HttpScope): RuleHttp {
  if (scope.view && !scope.response) return scope.view;
  const url = new URL(scope.req.url ?? '/', 'http://gateway');
  const cookies = new Map<string, string>();
  for (const part of (scope.req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && !cookies.has(part.slice(0, eq).trim()))
      cookies.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  const http: RuleHttp = {
    method: scope.req.method ?? 'GET',
    path: url.pathname,
    query: url.searchParams,
    uri: scope.req.url ?? '/',
    host: scope.req.headers.host ?? '',
    headers: requestEditor(scope),
    cookie: (name) => cookies.get(name),
    respond: (status, options = {}) => {
      if (scope.responded) throw new Error('respond may be called only once per request');
      if (!Number.isInteger(status) || status < 100 || status > 599)
        throw new Error(`invalid status ${status}`);
      scope.responded = { status, headers: options.headers ?? {}, body: options.body ?? '' };
    },
  };
  if (scope.response)
    http.response = { status: scope.response.status, headers: responseEditor(scope.response.headers) };
  else scope.view = http;
  return http;
}

/** Build the context one rule handler sees for one event. */
export function ruleContext(event: RuleEvent, rule: string, scope: RuleScope): RuleContext {
  const { engine } = scope;
  const target = (sid?: string): string => {
    const id = sid ?? scope.sessionId;
    if (!id) throw new Error(`${event}: this flow has no session; pass sid`);
    return id;
  };
  const closed = event === 'ACCESS_SESSION_CLOSED';
  const session: RuleSession = {
    sid: () => scope.sessionId as SessionId | undefined,
    create: async (o = {}) => {
      const { id } = await engine.create({
        state: 'allow',
        ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
        ...(o.lifetime !== undefined ? { lifetime: o.lifetime } : {}),
      });
      if (o.flow) scope.sessionId = id;
      return id;
    },
    modify: async (o) => {
      const { sid, ...rest } = o;
      scope.dirty = true;
      await engine.modify(target(sid), rest);
    },
    exists: async (token, o = {}) => {
      const known = scope.dirty ? undefined : scope.known;
      if (known && token !== undefined && token === known.token && knownState(o.state)) {
        return known.record !== undefined && (o.state === undefined || known.record.state === o.state);
      }
      if (token === undefined) return scope.sessionId ? engine.existsById(scope.sessionId, o) : false;
      try {
        return await engine.exists(token, o);
      } catch {
        return false; // a malformed cookie value names no session
      }
    },
    data: {
      get: async (key, o = {}) => {
        if (closed && o.sid === undefined && scope.snapshot) return scope.snapshot.get(key, o);
        const record = scope.dirty ? undefined : scope.known?.record;
        if (record && (o.sid === undefined || o.sid === record.id) && record.id === scope.sessionId) {
          return engine.data.ofSnapshot(record).get(key, o);
        }
        return engine.data.get(target(o.sid), key, o);
      },
      set: async (key, value = '', o = {}) => {
        if (closed && o.sid === undefined) throw new Error('ACCESS_SESSION_CLOSED: the session has ended');
        scope.dirty = true;
        await engine.data.set(target(o.sid), key, value, o);
      },
    },
    remove: async (sid) => {
      if (closed && sid === undefined) return;
      scope.dirty = true;
      await engine.remove(target(sid));
      if (sid === undefined || sid === scope.sessionId) scope.removed = true;
    },
  };
  return {
    event,
    rule,
    session,
    policy: scope.policy ?? {},
    get http(): RuleHttp {
      if (!scope.http) throw new Error(`${event} has no HTTP context (no connection)`);
      return httpOf(scope.http);
    },
    ip: { matches: ipMatches },
    clock: { now: () => engine.clock.now(), seconds: () => Math.floor(engine.clock.now() / 1000) },
    log: (message) => scope.logger.info({ rule, event, sessionId: scope.sessionId }, message),
  };
}

/** Unknown state names go to the engine, which rejects them with its typed error. */
function knownState(state: SessionState | undefined): boolean {
  return state === undefined || SESSION_STATES.includes(state);
}
