import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { z } from 'zod';
import type { AuditSink } from '../core/audit.js';
import { SessionGateError, sessionNotFound } from '../core/errors.js';
import { parseSessionId, type SessionId } from '../core/ids.js';
import { CLOSE_REASONS, SESSION_STATES, type SessionRecord } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';
import { checkVariableName, READ_ONLY_VARIABLES } from '../session/variables.js';
import { invalid, parseWith, readJson, sendEmpty, sendJson } from './http.js';
import type { AdminMetrics } from './metrics.js';
import { OPENAPI } from './openapi.js';
import { getSessionRecording, listSessionRecordings, type RecordingSource } from './recordings.js';
import { sessionDetailView, sessionView } from './views.js';

/** What the API handlers work on. */
export interface ApiDeps {
  engine: SessionEngine;
  metrics: AdminMetrics;
  audit: AuditSink;
  /** `?secure=1` reveals secure values to token clients (audited); off = 403. */
  revealSecure: boolean;
  /** SSH session recordings (supplied by the cli); absent: every session has none. */
  recordings?: RecordingSource | undefined;
}

/** One request to an API route. */
export interface ApiCall {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Who made it, for the audit trail: a bearer-token client or the web page. */
  by: 'admin_api' | 'admin_page';
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI-style template, e.g. `/api/v1/sessions/{id}`. */
  path: string;
  /** Needs the admin token (or the page's cookie). */
  auth: boolean;
  handle(call: ApiCall, deps: ApiDeps): Promise<void>;
}

/** The most seconds a timeout may be: 100 years keeps every deadline a valid date. */
const MAX_SECONDS = 3_153_600_000;
const seconds = z
  .int({ error: 'expected a whole number of seconds >= 0' })
  .min(0, { error: 'expected a whole number of seconds >= 0' })
  .max(MAX_SECONDS, { error: `at most ${MAX_SECONDS} seconds (100 years)` });
const userName = z
  .string({ error: 'expected a string' })
  .min(1, { error: 'expected a non-empty name' })
  .max(256, { error: 'at most 256 characters' })
  .refine((u) => !/\p{Cc}/u.test(u), { error: 'control characters are not allowed' });

const createBody = z.strictObject(
  {
    timeout: seconds.optional(),
    lifetime: seconds.optional(),
    user: userName.optional(),
    variables: z.record(z.string(), z.string({ error: 'expected a string value' })).optional(),
    state: z.enum(SESSION_STATES, { error: `expected one of ${SESSION_STATES.join(', ')}` }).optional(),
    client_ip: z
      .string({ error: 'expected an IP address' })
      .refine((ip) => isIP(ip) !== 0, { error: 'expected an IPv4 or IPv6 address' })
      .optional(),
  },
  { error: 'expected a JSON object' },
);

const patchBody = z.strictObject(
  { timeout: seconds.optional(), lifetime: seconds.optional(), remaining: seconds.optional() },
  { error: 'expected a JSON object' },
);

const putVariableBody = z.strictObject(
  {
    value: z.string({ error: 'expected a string' }),
    secure: z.boolean({ error: 'expected true or false' }).optional(),
  },
  { error: 'expected a JSON object' },
);

function onlyParams(query: URLSearchParams, allowed: string[]): void {
  for (const key of query.keys()) if (!allowed.includes(key)) throw invalid(key, 'unknown query parameter');
}

function flag(query: URLSearchParams, name: string): boolean {
  const v = query.get(name);
  if (v === null || v === '0' || v === 'false') return false;
  if (v === '1' || v === 'true' || v === '') return true;
  throw invalid(name, 'expected 1 or 0');
}

async function live(engine: SessionEngine, id: string): Promise<SessionRecord> {
  const s = await engine.get(parseSessionId(id));
  if (!s) throw sessionNotFound(id);
  return s;
}

function variableName(name: string): string {
  checkVariableName(name);
  return name;
}

async function listSessions({ query, res }: ApiCall, { engine }: ApiDeps): Promise<void> {
  onlyParams(query, ['user', 'state', 'client_ip', 'limit', 'cursor']);
  const user = query.get('user') ?? undefined;
  if (user !== undefined) parseWith(userName, user, 'user');
  const state = query.get('state') ?? undefined;
  if (state !== undefined && !(SESSION_STATES as readonly string[]).includes(state)) {
    throw invalid('state', `expected one of ${SESSION_STATES.join(', ')}`);
  }
  const clientIp = query.get('client_ip') ?? undefined;
  if (clientIp !== undefined && isIP(clientIp) === 0)
    throw invalid('client_ip', 'expected an IPv4 or IPv6 address');
  const limitText = query.get('limit');
  const limit = limitText === null ? 100 : Number(limitText);
  if (!/^\d+$/.test(limitText ?? '1') || limit < 1 || limit > 1000)
    throw invalid('limit', 'expected 1 to 1000');
  const cursor = query.get('cursor') || null;
  const page = await engine.list({
    ...(user !== undefined ? { user } : {}),
    ...(state !== undefined ? { state: state as SessionRecord['state'] } : {}),
    ...(clientIp !== undefined ? { clientIp } : {}),
    limit,
    cursor,
  });
  sendJson(res, 200, { sessions: page.sessions.map(sessionView), next_cursor: page.nextCursor });
}

async function createSession(call: ApiCall, { engine, metrics, audit }: ApiDeps): Promise<void> {
  onlyParams(call.query, []);
  const body = parseWith(createBody, await readJson(call.req));
  for (const name of Object.keys(body.variables ?? {})) {
    try {
      checkVariableName(name);
    } catch (err) {
      throw invalid(`variables.${name.slice(0, 64)}`, (err as Error).message);
    }
    if (
      READ_ONLY_VARIABLES.has(name) ||
      name === 'session.inactivity_timeout' ||
      name === 'session.max_session_timeout'
    ) {
      throw invalid(
        `variables.${name}`,
        'maintained by sessiongate (use timeout and lifetime for the timeouts)',
      );
    }
  }
  const created = await engine.create({
    state: body.state ?? 'allow',
    ...(body.timeout !== undefined ? { timeout: body.timeout } : {}),
    ...(body.lifetime !== undefined ? { lifetime: body.lifetime } : {}),
    ...(body.user !== undefined ? { user: body.user } : {}),
    ...(body.client_ip !== undefined ? { clientIp: body.client_ip } : {}),
    ...(body.variables !== undefined ? { variables: body.variables } : {}),
  });
  metrics.sessionCreated('admin_api');
  audit.write({
    event: 'session_start',
    sessionId: created.id,
    user: body.user ?? null,
    clientIp: body.client_ip ?? null,
    origin: 'admin_api',
    by: call.by,
  });
  sendJson(call.res, 201, { id: created.id, token: created.token });
}

/** The reasons `DELETE /api/v1/sessions?user=` takes: a kill, or the end of a password change. */
const USER_KILL_REASONS = ['admin_kill', 'password_changed'] as const;

async function killUser(call: ApiCall, { engine, audit }: ApiDeps): Promise<void> {
  onlyParams(call.query, ['user', 'reason']);
  const user = call.query.get('user');
  if (user === null)
    throw invalid('user', 'required (DELETE /api/v1/sessions?user=NAME closes every session of NAME)');
  parseWith(userName, user, 'user');
  const reason = USER_KILL_REASONS.find((r) => r === (call.query.get('reason') ?? 'admin_kill'));
  if (reason === undefined) throw invalid('reason', `expected ${USER_KILL_REASONS.join(' or ')}`);
  let closed = 0;
  for (const s of await engine.listByUser(user)) {
    if (await engine.close(s.id, reason)) {
      closed++;
      audit.write({
        event: 'session_kill',
        sessionId: s.id,
        user: s.user,
        clientIp: s.clientIp,
        reason,
        by: call.by,
      });
    }
  }
  sendJson(call.res, 200, { closed });
}

async function getSession({ params, query, res }: ApiCall, { engine }: ApiDeps): Promise<void> {
  onlyParams(query, []);
  sendJson(res, 200, sessionDetailView(await live(engine, params.id!)));
}

async function patchSession(call: ApiCall, { engine }: ApiDeps): Promise<void> {
  onlyParams(call.query, []);
  const body = parseWith(patchBody, await readJson(call.req));
  if (body.timeout === undefined && body.lifetime === undefined && body.remaining === undefined) {
    throw invalid('body', 'nothing to change: give timeout, lifetime or remaining');
  }
  if (body.lifetime !== undefined && body.remaining !== undefined) {
    throw new SessionGateError(
      'SG_ERR_LIFETIME_WITH_REMAINING',
      'lifetime and remaining cannot be used together',
    );
  }
  const s = await live(engine, call.params.id!);
  sendJson(call.res, 200, sessionView(await engine.modify(s.id, body)));
}

async function deleteSession(call: ApiCall, { engine, audit }: ApiDeps): Promise<void> {
  onlyParams(call.query, ['reason']);
  const reason = call.query.get('reason') ?? 'admin_kill';
  if (reason !== 'admin_kill' && reason !== 'removed')
    throw invalid('reason', 'expected admin_kill or removed');
  const s = await live(engine, call.params.id!);
  if (!(await engine.close(s.id, reason))) throw sessionNotFound(s.id);
  audit.write({
    event: 'session_kill',
    sessionId: s.id,
    user: s.user,
    clientIp: s.clientIp,
    reason,
    by: call.by,
  });
  sendEmpty(call.res, 204);
}

async function getVariable(call: ApiCall, deps: ApiDeps): Promise<void> {
  const { params, query, res } = call;
  onlyParams(query, ['secure', 'config']);
  const secure = flag(query, 'secure');
  const config = flag(query, 'config');
  if (secure && config) throw invalid('secure', 'secure and config cannot be used together');
  const id = parseSessionId(params.id);
  const name = params.name!;
  if (!config) variableName(name);
  if (secure) await revealAllowed(call, deps, id, name);
  const value = await deps.engine.data.get(id, name, { secure, config });
  sendJson(res, 200, { name, value: value ?? null });
}

/**
 * A secure value in clear is for token clients only, when `admin.reveal_secure` is on; the web
 * page never gets one. Every attempt is an audit line naming the variable, never the value.
 */
async function revealAllowed(call: ApiCall, deps: ApiDeps, id: SessionId, name: string): Promise<void> {
  const { by } = call;
  const allowed = deps.revealSecure && by === 'admin_api';
  const s = await deps.engine.get(id);
  deps.audit.write({
    event: 'variable_reveal',
    sessionId: id,
    user: s?.user ?? null,
    clientIp: s?.clientIp ?? null,
    name,
    allowed,
    by,
  });
  if (allowed) return;
  throw new SessionGateError(
    'SG_ERR_SECURE_REVEAL_DISABLED',
    by === 'admin_page'
      ? 'the admin page never shows secure values'
      : 'this gateway does not reveal secure values over the admin API (admin.reveal_secure is off)',
  );
}

async function putVariable(call: ApiCall, { engine, audit }: ApiDeps): Promise<void> {
  onlyParams(call.query, []);
  const id = parseSessionId(call.params.id);
  const name = variableName(call.params.name!);
  const body = parseWith(putVariableBody, await readJson(call.req));
  const s = await live(engine, id);
  try {
    await engine.data.set(id, name, body.value, { secure: body.secure ?? false });
  } catch (err) {
    // The timeout variables parse their value and quote it; never echo a secure one.
    if (body.secure && err instanceof SessionGateError && err.code === 'SG_ERR_INVALID_TIMEOUT') {
      throw new SessionGateError('SG_ERR_INVALID_TIMEOUT', `${name} must be a whole number of seconds >= 0`);
    }
    throw err;
  }
  // Never the value: not for secure variables, and plain ones may hold personal data.
  audit.write({
    event: 'variable_set',
    sessionId: id,
    user: s.user,
    clientIp: s.clientIp,
    name,
    secure: body.secure ?? false,
    by: call.by,
  });
  sendEmpty(call.res, 204);
}

/** At most this many sessions are walked for the per-profile counts of `GET /stats`. */
export const PROFILE_WALK_LIMIT = 10_000;

async function stats({ query, res }: ApiCall, { engine, metrics }: ApiDeps): Promise<void> {
  onlyParams(query, []);
  const sample = await metrics.storeSample();
  const byProfile: Record<string, number> = {};
  let walked = 0;
  let cursor: string | null = null;
  do {
    const page = await engine.list({ cursor, limit: 1000 });
    for (const s of page.sessions) byProfile[s.profile] = (byProfile[s.profile] ?? 0) + 1;
    walked += page.sessions.length;
    cursor = page.nextCursor;
  } while (cursor !== null && walked < PROFILE_WALK_LIMIT);
  const closedByReason = Object.fromEntries(CLOSE_REASONS.map((r) => [r, metrics.closed.get(r) ?? 0]));
  const createdByOrigin = {
    gateway: metrics.created.get('gateway') ?? 0,
    admin_api: metrics.created.get('admin_api') ?? 0,
  };
  const total = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
  sendJson(res, 200, {
    since: new Date(metrics.startedAt).toISOString(),
    sessions: {
      active: sample.stats.sessions,
      by_state: sample.stats.byState,
      by_profile: byProfile,
      by_profile_complete: cursor === null,
    },
    created: { total: total(createdByOrigin), by_origin: createdByOrigin },
    closed: { total: total(closedByReason), by_reason: closedByReason },
    policy_results: Object.fromEntries(metrics.policyResults),
    close_pipeline: {
      backlog: sample.backlog,
      pending: sample.stats.outboxPending,
      failed_total: sample.failed,
      failed: sample.stats.outboxFailed,
      backlog_growing_since:
        sample.backlogGrowingSince === null ? null : new Date(sample.backlogGrowingSince).toISOString(),
      stuck: sample.stuck,
      subscribers: Object.fromEntries(
        Object.entries(sample.subscribers).map(([name, lag]) => [
          name,
          {
            pending: lag.pending,
            failed: lag.failed,
            oldest_age_seconds: Math.round(lag.oldestAgeMs / 1000),
            behind: lag.behind,
            stuck: lag.stuck,
          },
        ]),
      ),
    },
  });
}

async function openapi({ res }: ApiCall): Promise<void> {
  sendJson(res, 200, OPENAPI);
}

/** Every route of the admin API; `test/admin/openapi.test.ts` checks it against the OpenAPI document. */
export const API_ROUTES: ApiRoute[] = [
  { method: 'GET', path: '/api/v1/sessions', auth: true, handle: listSessions },
  { method: 'POST', path: '/api/v1/sessions', auth: true, handle: createSession },
  { method: 'DELETE', path: '/api/v1/sessions', auth: true, handle: killUser },
  { method: 'GET', path: '/api/v1/sessions/{id}', auth: true, handle: getSession },
  { method: 'PATCH', path: '/api/v1/sessions/{id}', auth: true, handle: patchSession },
  { method: 'DELETE', path: '/api/v1/sessions/{id}', auth: true, handle: deleteSession },
  { method: 'GET', path: '/api/v1/sessions/{id}/variables/{name}', auth: true, handle: getVariable },
  { method: 'PUT', path: '/api/v1/sessions/{id}/variables/{name}', auth: true, handle: putVariable },
  { method: 'GET', path: '/api/v1/sessions/{id}/recordings', auth: true, handle: listSessionRecordings },
  {
    method: 'GET',
    path: '/api/v1/sessions/{id}/recordings/{channel}',
    auth: true,
    handle: getSessionRecording,
  },
  { method: 'GET', path: '/api/v1/stats', auth: true, handle: stats },
  { method: 'GET', path: '/api/v1/openapi.json', auth: false, handle: openapi },
];

interface Compiled {
  re: RegExp;
  names: string[];
  routes: ApiRoute[];
}

const COMPILED: Compiled[] = [];
for (const route of API_ROUTES) {
  let entry = COMPILED.find((c) => c.routes[0]!.path === route.path);
  if (!entry) {
    const names: string[] = [];
    const pattern = route.path.replace(/[.]/g, '\\.').replace(/\{(\w+)\}/g, (_, name: string) => {
      names.push(name);
      return '([^/]+)';
    });
    entry = { re: new RegExp(`^${pattern}$`), names, routes: [] };
    COMPILED.push(entry);
  }
  entry.routes.push(route);
}

/** The route for a path and method; `allow` lists the methods when only the method is wrong. */
export function matchApi(
  method: string,
  path: string,
): { route: ApiRoute; params: Record<string, string> } | { allow: string[] } | undefined {
  for (const c of COMPILED) {
    const m = c.re.exec(path);
    if (!m) continue;
    const route = c.routes.find((r) => r.method === method);
    if (!route) return { allow: c.routes.map((r) => r.method) };
    const params: Record<string, string> = {};
    c.names.forEach((name, i) => {
      try {
        params[name] = decodeURIComponent(m[i + 1]!);
      } catch {
        throw invalid(name, 'malformed percent-encoding');
      }
    });
    return { route, params };
  }
  return undefined;
}
