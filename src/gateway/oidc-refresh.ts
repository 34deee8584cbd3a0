import { createHash } from 'node:crypto';
import type { Logger } from '../core/logger.js';
import type { SessionRecord } from '../core/session-types.js';
import type { RefreshedTokens } from '../plugins/builtin/oidc-client.js';
import { RefreshFailed } from '../plugins/builtin/oidc-client.js';
import type { SessionEngine } from '../session/engine.js';

/** One provider's refresh grant (an `oidc` plugin's `tokenRefresher`). */
export type Refresher = (
  refreshToken: string,
  sub: string | undefined,
  now: number,
) => Promise<RefreshedTokens>;

/** After a provider did not answer, the session's next try waits this long. */
const RETRY_AFTER_MS = 30_000;
/** Bounds the memory of sessions whose provider did not answer (cleared when it is full). */
const MAX_RETRY_ENTRIES = 10_000;

const REFRESH_AT = 'session.oauth.refresh_at';
const EXPIRES_AT = 'session.oauth.expires_at';

/**
 * Keeps a signed-in session's OpenID Connect access token fresh while the session is used:
 * a request after `session.oauth.refresh_at` (set at sign-in when the provider gave a refresh
 * token: the expiry less the plugin's `refresh_before_seconds`) refreshes it at the provider.
 * Before the expiry the request goes on at once and the refresh runs beside it; after the
 * expiry the request waits for the new token. A refresh the provider refuses (revoked, user
 * disabled) ends the session with reason `token_refresh_failed`; a provider that does not
 * answer leaves the session as it is and is asked again 30 s later.
 *
 * Only one refresh per session runs at a time across every gateway process: a claim in the
 * store (the counters that also refuse replayed logout tokens) picks the one that runs it, so
 * a provider that rotates refresh tokens never sees the same one twice.
 *
 * @example
 * ```ts
 * const refresh = new TokenRefresh(new Map([['sso', refresher]]), engine, logger);
 * const waiting = refresh.due(session); // undefined: go on with `session`
 * const current = waiting ? await waiting : session; // null: the session has ended
 * ```
 */
export class TokenRefresh {
  private readonly running = new Map<string, Promise<SessionRecord | null>>();
  private readonly retryAt = new Map<string, number>();

  constructor(
    private readonly refreshers: ReadonlyMap<string, Refresher>,
    private readonly engine: SessionEngine,
    private readonly logger: Logger,
  ) {}

  /**
   * Called for every request of an allowed session; one variable read when nothing is due.
   * A promise when the request must wait: the session after the refresh, or null when it ended.
   */
  due(session: SessionRecord): Promise<SessionRecord | null> | undefined {
    const refreshAt = session.variables[REFRESH_AT];
    if (refreshAt === undefined) return undefined;
    const at = Number(refreshAt); // '' (no expiry known): never due
    const now = this.engine.clock.now();
    if (!(at > 0) || now < at * 1000) return undefined;
    if (now < (this.retryAt.get(session.id) ?? 0)) return undefined;
    const work = this.running.get(session.id) ?? this.start(session);
    const expired = now >= Number(session.variables[EXPIRES_AT] ?? 0) * 1000;
    if (expired) return work;
    work.catch(() => undefined);
    return undefined;
  }

  private start(session: SessionRecord): Promise<SessionRecord | null> {
    const work = this.refresh(session)
      .catch((err: unknown) => {
        this.logger.warn(
          { sessionId: session.id, error: (err as Error).message },
          'oidc token refresh failed',
        );
        return session;
      })
      .finally(() => this.running.delete(session.id));
    this.running.set(session.id, work);
    return work;
  }

  private async refresh(session: SessionRecord): Promise<SessionRecord | null> {
    const provider = session.variables['session.oauth.provider'] ?? '';
    const refresher = this.refreshers.get(provider);
    if (!refresher) return session; // the plugin is gone from the config: keep what there is
    const refreshToken = await this.engine.data.get(session.id, 'session.oauth.refresh_token', {
      secure: true,
    });
    if (!refreshToken) return session;
    if (!(await this.claim(session, refreshToken))) return session; // another process runs it
    const now = this.engine.clock.now();
    try {
      const got = await refresher(refreshToken, session.variables['session.oauth.sub'], now);
      await this.keep(
        session.id,
        got,
        Number(session.variables[EXPIRES_AT]) - Number(session.variables[REFRESH_AT]),
      );
      this.retryAt.delete(session.id);
      this.logger.debug?.({ sessionId: session.id, provider }, 'oidc access token refreshed');
      return await this.engine.get(session.id);
    } catch (err) {
      if (!(err instanceof RefreshFailed)) throw err;
      if (err.kind === 'unreachable') {
        if (this.retryAt.size >= MAX_RETRY_ENTRIES) this.retryAt.clear();
        this.retryAt.set(session.id, now + RETRY_AFTER_MS);
        this.logger.warn(
          { sessionId: session.id, provider, reason: err.message },
          'oidc token refresh failed',
        );
        return session;
      }
      this.logger.warn(
        { sessionId: session.id, provider, reason: err.message },
        'oidc token refresh refused: the session ends',
      );
      await this.engine.close(session.id, 'token_refresh_failed');
      return null;
    }
  }

  /** The first process to count this refresh token for this session runs the refresh. */
  private async claim(session: SessionRecord, refreshToken: string): Promise<boolean> {
    // The expiry too: the same refresh token used again for the next round is a new claim.
    const round = `${session.id}\0${session.variables[EXPIRES_AT] ?? ''}\0${refreshToken}`;
    const digest = createHash('sha256').update(round).digest('hex').slice(0, 40);
    const now = this.engine.clock.now();
    const seen = await this.engine.store.countFailure(`oidc-refresh:${digest}`, RETRY_AFTER_MS, now);
    return seen.count === 1;
  }

  /** The new tokens, as the sign-in kept them: tokens secure, times plain. */
  private async keep(id: string, got: RefreshedTokens, beforeSeconds: number): Promise<void> {
    const { data } = this.engine;
    await data.set(id, 'session.oauth.access_token', got.accessToken, { secure: true });
    if (got.refreshToken)
      await data.set(id, 'session.oauth.refresh_token', got.refreshToken, { secure: true });
    if (got.idToken) await data.set(id, 'session.oauth.id_token', got.idToken, { secure: true });
    if (got.expiresAt === undefined) {
      // No expiry given: nothing tells when to refresh again.
      await data.set(id, EXPIRES_AT, '');
      await data.set(id, REFRESH_AT, '');
      return;
    }
    await data.set(id, EXPIRES_AT, String(got.expiresAt));
    await data.set(
      id,
      REFRESH_AT,
      String(got.expiresAt - (Number.isFinite(beforeSeconds) ? beforeSeconds : 60)),
    );
  }
}
