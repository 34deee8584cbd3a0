import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ERROR_CODES, SessionGateError, type ErrorCode } from '../core/errors.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionDetailView, SessionView } from '../admin/views.js';
import { usage } from './args.js';
import type { Io } from './context.js';

/** A session as the admin API returns it: the list view, plus variables and plugins from `GET /sessions/{id}`. */
export type ApiSession = SessionView & Partial<Pick<SessionDetailView, 'variables' | 'plugins'>>;

/** The token file looked for when neither --token-file nor SESSIONGATE_ADMIN_TOKEN is given. */
export const DEFAULT_TOKEN_FILE = './var/admin.token';

/**
 * A client of a running gateway's admin API, for `sessiongate session ... --url URL`. API
 * errors come back as the same catalogue errors the store mode raises, so the CLI prints and
 * exits alike either way.
 *
 * @example
 * ```ts
 * const api = AdminClient.from('http://127.0.0.1:8081', undefined, io);
 * const page = await api.call<{ sessions: ApiSession[] }>('GET', '/api/v1/sessions');
 * ```
 */
export class AdminClient {
  constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  /** The URL checked, and the token from --token-file, SESSIONGATE_ADMIN_TOKEN or ./var/admin.token. */
  static from(url: string, tokenFile: string | undefined, io: Io, command: string): AdminClient {
    let base: URL;
    try {
      base = new URL(url);
    } catch {
      throw usage(`--url: expected the admin API's base URL, e.g. http://127.0.0.1:8081`, command);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw usage('--url: expected an http:// or https:// URL', command);
    }
    return new AdminClient(base.href.replace(/\/+$/, ''), adminToken(tokenFile, io));
  }

  /** Call the API; 2xx gives the parsed body (undefined for 204), an error answer throws its error. */
  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.send(method, path, body);
    if (res.status === 204) return undefined as T;
    const parsed = await res.json().catch(() => undefined);
    if (res.ok && parsed !== undefined) return parsed as T;
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    if (error && typeof error.code === 'string' && Object.hasOwn(ERROR_CODES, error.code)) {
      throw new SessionGateError(error.code as ErrorCode, String(error.message ?? error.code));
    }
    throw new SessionGateError(
      'SG_ERR_ADMIN_UNAVAILABLE',
      `${this.base} answered ${res.status} without an admin API error: is --url the admin listener?`,
    );
  }

  /** Like `call`, but a 404 (no such session) gives undefined instead of an error. */
  async find<T>(path: string): Promise<T | undefined> {
    try {
      return await this.call<T>('GET', path);
    } catch (err) {
      if (err instanceof SessionGateError && err.code === 'SG_ERR_SESSION_NOT_FOUND') return undefined;
      throw err;
    }
  }

  private async send(method: string, path: string, body: unknown): Promise<Response> {
    try {
      return await fetch(this.base + path, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new SessionGateError(
        'SG_ERR_ADMIN_UNAVAILABLE',
        `cannot reach the admin API at ${this.base} (${cause})`,
        {
          cause: err,
        },
      );
    }
  }
}

function adminToken(tokenFile: string | undefined, io: Io): string {
  const fromEnv = io.env.SESSIONGATE_ADMIN_TOKEN;
  if (tokenFile === undefined && fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim();
  const path = resolve(io.cwd, tokenFile ?? DEFAULT_TOKEN_FILE);
  if (tokenFile === undefined && !existsSync(path)) {
    throw new SessionGateError(
      'SG_ERR_ADMIN_TOKEN',
      `no admin token: give --token-file FILE or set SESSIONGATE_ADMIN_TOKEN (${DEFAULT_TOKEN_FILE} does not exist)`,
    );
  }
  let token: string;
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new SessionGateError('SG_ERR_ADMIN_TOKEN', `cannot read the admin token file ${path} (${code})`);
  }
  if (token === '') throw new SessionGateError('SG_ERR_ADMIN_TOKEN', `the admin token file ${path} is empty`);
  return token;
}

/** An API session as a record, for the table and text views the store mode prints. */
export function recordOfApi(s: ApiSession): SessionRecord {
  const ms = (t: string | null) => (t === null ? null : Date.parse(t));
  return {
    id: s.id as SessionRecord['id'],
    state: s.state,
    user: s.user,
    clientIp: s.client_ip,
    profile: '',
    createdAt: Date.parse(s.created_at),
    lastAccessAt: Date.parse(s.last_access_at),
    idleTimeout: s.idle_timeout,
    lifetime: s.lifetime,
    lifetimeDeadline: ms(s.lifetime_expires_at),
    // An older gateway's API has no policy_expires_at: its expires_at still holds the deadline.
    policyDeadline: ms(s.policy_expires_at ?? null),
    expiresAt: ms(s.expires_at),
    variables: {},
    secure: {},
    cookies: {},
    sessionCookie: {},
    version: 0,
  };
}

/** A session path segment (ids are hex; encoded anyway). */
export const sessionPath = (id: string): string => `/api/v1/sessions/${encodeURIComponent(id)}`;
