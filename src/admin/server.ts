import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { noAudit, type AuditSink } from '../core/audit.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { isSessionGateError, SessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import type { SessionEngine } from '../session/engine.js';
import { matchApi, type ApiDeps } from './api.js';
import { invalid, readJson, SECURITY_HEADERS, sendEmpty, sendError, sendJson } from './http.js';
import type { AdminMetrics } from './metrics.js';
import { ADMIN_COOKIE, PageSessions } from './page-sessions.js';
import type { RecordingSource } from './recordings.js';
import { secretMatches } from './token.js';

export interface AdminOptions {
  engine: SessionEngine;
  metrics: AdminMetrics;
  /** The admin token (content of the token file). */
  token: string;
  audit?: AuditSink;
  host?: string;
  /** 0 = a free port (tests). */
  port?: number;
  logger?: Logger;
  clock?: Clock;
  /** A web page session ends after this much inactivity (ms, default 30 min)... */
  pageIdleMs?: number;
  /** ...or this long after the login (ms, default 8 h). */
  pageLifetimeMs?: number;
  /** readyz fails when the store does not answer stats() within this (ms, default 2000). */
  readyTimeoutMs?: number;
  /** `?secure=1` reveals secure values to token clients, audited (config `admin.reveal_secure`; default false). */
  revealSecure?: boolean;
  /** SSH session recordings for `GET /api/v1/sessions/{id}/recordings` (absent: none). */
  recordings?: RecordingSource;
}

export interface RunningAdmin {
  url: string;
  server: Server;
  /** Stop listening; connections still open after `graceMs` are cut. */
  close(graceMs?: number): Promise<void>;
}

export { ADMIN_COOKIE } from './page-sessions.js';

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/admin.js': { file: 'admin.js', type: 'text/javascript; charset=utf-8' },
  '/sessions-table.js': { file: 'sessions-table.js', type: 'text/javascript; charset=utf-8' },
  '/admin.css': { file: 'admin.css', type: 'text/css; charset=utf-8' },
};

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/**
 * The admin listener (docs/admin.md): the REST API under `/api/v1/` (bearer token, or the web
 * page's cookie), the web page at `/`, `/login` and `/logout` for the page, and `/metrics`,
 * `/healthz`, `/readyz` without a token (the listener is on loopback by default).
 *
 * @example
 * ```ts
 * const admin = await startAdmin({ engine, metrics, token: loadOrCreateAdminToken(file), port: 8081 });
 * ```
 */
export async function startAdmin(o: AdminOptions): Promise<RunningAdmin> {
  const logger = o.logger ?? silentLogger;
  const requests = new AdminRequests(o, logger);
  const server = createServer((req, res) => {
    requests.handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (isSessionGateError(err)) return sendError(res, err.code, err.message);
      logger.error({ err: (err as Error).message, path: req.url?.split('?')[0] }, 'admin request failed');
      sendError(res, 'SG_ERR_INTERNAL', 'the admin request failed; the log has the details');
    });
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 8081, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    server,
    close: (graceMs = 2000) =>
      (closing ??= new Promise<void>((done) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          done();
        });
        server.closeIdleConnections();
      })),
  };
}

/** Paths outside the API that exist (a wrong method on them is 405, not 404). */
const OWN_PATHS = ['/healthz', '/readyz', '/metrics', '/login', '/logout'];

/** The admin listener's requests: the API, the page and its login, metrics and probes. */
class AdminRequests {
  private readonly deps: ApiDeps;
  private readonly pages: PageSessions;
  private readonly files = new Map<string, Buffer>();

  constructor(
    private readonly o: AdminOptions,
    private readonly logger: Logger,
  ) {
    this.deps = {
      engine: o.engine,
      metrics: o.metrics,
      audit: o.audit ?? noAudit,
      revealSecure: o.revealSecure ?? false,
      recordings: o.recordings,
    };
    this.pages = new PageSessions(
      o.clock ?? systemClock,
      o.pageIdleMs ?? 30 * 60_000,
      o.pageLifetimeMs ?? 8 * 3_600_000,
    );
    for (const { file } of Object.values(STATIC)) {
      this.files.set(file, readFileSync(new URL(`./static/${file}`, import.meta.url)));
    }
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin.invalid');
    } catch {
      return sendError(res, 'SG_ERR_INVALID_REQUEST', 'url: malformed');
    }
    const path = url.pathname;
    if (path.startsWith('/api/')) return this.api(req, res, method, url);
    if ((method === 'GET' || method === 'HEAD') && (await this.read(res, method, path))) return;
    if (method === 'POST' && path === '/login') return this.login(req, res);
    if (method === 'POST' && path === '/logout') return this.logout(req, res);
    if (Object.hasOwn(STATIC, path) || OWN_PATHS.includes(path))
      return sendError(res, 'SG_ERR_METHOD_NOT_ALLOWED', `${path} does not take ${method}`);
    sendError(res, 'SG_ERR_UNKNOWN_ENDPOINT', `no admin endpoint ${path.slice(0, 100)}`);
  }

  /** A REST API call: route, method, who asks (token or page cookie, CSRF check), the call. */
  private async api(req: IncomingMessage, res: ServerResponse, method: string, url: URL): Promise<void> {
    const path = url.pathname;
    const found = matchApi(method, path);
    if (!found)
      return sendError(res, 'SG_ERR_UNKNOWN_ENDPOINT', `no admin API endpoint ${path.slice(0, 100)}`);
    if ('allow' in found) {
      const allow = found.allow.join(', ');
      return sendError(res, 'SG_ERR_METHOD_NOT_ALLOWED', `${path.slice(0, 100)} takes ${allow}`, { allow });
    }
    let by: 'admin_api' | 'admin_page' = 'admin_api';
    if (found.route.auth) {
      const who = this.authOf(req);
      if (!who) {
        return sendError(
          res,
          'SG_ERR_UNAUTHORIZED',
          'a valid admin token is required (Authorization: Bearer TOKEN)',
          {
            'www-authenticate': 'Bearer realm="sessiongate-admin"',
          },
        );
      }
      if (who === 'admin_page' && method !== 'GET' && !sameOrigin(req)) {
        return sendError(
          res,
          'SG_ERR_CSRF_CHECK_FAILED',
          'changes made with the page cookie need the X-Requested-With header and the admin origin',
        );
      }
      by = who;
    }
    await found.route.handle({ req, res, params: found.params, query: url.searchParams, by }, this.deps);
    if (method !== 'GET')
      this.logger.info({ method, route: found.route.path, status: res.statusCode, by }, 'admin api');
  }

  /** Who is asking: a bearer-token client, the page (cookie), or nobody. */
  private authOf(req: IncomingMessage): 'admin_api' | 'admin_page' | undefined {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      return m && secretMatches(m[1]!, this.o.token) ? 'admin_api' : undefined;
    }
    return this.pages.find(req) ? 'admin_page' : undefined;
  }

  /** The page's files, /healthz, /readyz and /metrics; false when `path` is none of them. */
  private async read(res: ServerResponse, method: string, path: string): Promise<boolean> {
    const file = Object.hasOwn(STATIC, path) ? STATIC[path] : undefined;
    if (file) {
      const body = this.files.get(file.file)!;
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': file.type,
        'content-length': body.length,
        'content-security-policy': CSP,
        'cache-control': 'no-cache',
      });
      res.end(method === 'HEAD' ? undefined : body);
    } else if (path === '/healthz') sendJson(res, 200, { status: 'ok' });
    else if (path === '/readyz') await this.ready(res);
    else if (path === '/metrics') {
      const text = await this.o.metrics.text();
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'content-type': this.o.metrics.contentType,
        'cache-control': 'no-store',
      });
      res.end(text);
    } else return false;
    return true;
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (!sameOrigin(req)) return sendError(res, 'SG_ERR_CSRF_CHECK_FAILED', 'log in from the admin page');
    const body = await readJson(req);
    const token = (body as { token?: unknown }).token;
    if (typeof token !== 'string' || token === '') throw invalid('token', 'expected the admin token');
    if (!secretMatches(token, this.o.token)) {
      await new Promise((r) => setTimeout(r, 250)); // a guess costs time
      this.logger.warn({ peer: req.socket.remoteAddress }, 'admin page: login refused');
      return sendError(res, 'SG_ERR_UNAUTHORIZED', 'that is not the admin token');
    }
    const value = this.pages.start();
    this.logger.info({ peer: req.socket.remoteAddress }, 'admin page: logged in');
    sendEmpty(res, 204, { 'set-cookie': `${ADMIN_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict` });
  }

  private logout(req: IncomingMessage, res: ServerResponse): void {
    if (!sameOrigin(req)) return sendError(res, 'SG_ERR_CSRF_CHECK_FAILED', 'logout needs X-Requested-With');
    const key = this.pages.find(req);
    if (key) this.pages.end(key);
    sendEmpty(res, 204, { 'set-cookie': `${ADMIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0` });
  }

  /** Ready when the store answers in time and no close subscriber is stuck. */
  private async ready(res: ServerResponse): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const sample = await Promise.race([
        this.o.metrics.storeSample(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new SessionGateError('SG_ERR_STORE_UNAVAILABLE', 'the store did not answer in time')),
            this.o.readyTimeoutMs ?? 2000,
          );
        }),
      ]);
      const body = {
        status: sample.stuck ? 'not_ready' : 'ready',
        store: 'ok',
        close_backlog: sample.backlog,
        close_pipeline_stuck: sample.stuck,
        // Behind is a warning (still ready): the requests are served; a subscriber lags.
        close_subscribers_behind: sample.behind,
        close_subscribers_stuck: Object.keys(sample.subscribers).filter((n) => sample.subscribers[n]?.stuck),
      };
      sendJson(res, sample.stuck ? 503 : 200, body);
    } catch (err) {
      sendJson(res, 503, { status: 'not_ready', store: (err as Error).message.slice(0, 200) });
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * A request the page made itself: it carries X-Requested-With (a header other sites cannot
 * send without a CORS preflight, which this listener never grants) and, when the browser
 * says where it comes from, the admin origin.
 */
function sameOrigin(req: IncomingMessage): boolean {
  if (!req.headers['x-requested-with']) return false;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.headers.origin;
  return origin === undefined || origin === `http://${req.headers.host ?? ''}`;
}
