import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { SessionGateError, sessionNotFound } from '../core/errors.js';
import {
  idOfToken,
  isToken,
  newToken,
  parseSessionId,
  parseToken,
  type SessionId,
  type SessionToken,
} from '../core/ids.js';
import { isExpired } from '../core/deadline.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import {
  mergeStrings,
  SESSION_STATES,
  type CloseReason,
  type JsonObject,
  type SessionRecord,
  type SessionState,
} from '../core/session-types.js';
import type { ListPage, ListQuery, SessionPatch, SessionStore, ValidateOutcome } from '../store/contract.js';
import {
  CloseDispatcher,
  type CloseHandler,
  type DispatcherOptions,
  type SubscriberOptions,
} from './dispatcher.js';
import type { Keyring } from './keyring.js';
import { accessProfile, effectiveConfig, limitsOf, type AccessProfile } from './profile.js';
import { SessionData } from './session-data.js';
import { parseSeconds } from './variables.js';

export interface EngineOptions {
  store: SessionStore;
  keyring: Keyring;
  clock?: Clock;
  /** Access profiles by name; `default` is created with APM's defaults when absent. */
  profiles?: AccessProfile[];
  /** Idle touches closer together than this are not written (ms, default 1000). */
  touchResolutionMs?: number;
  logger?: Logger;
  /** Leases of the close pipeline (default: 5 s, renewed every 1.25 s while delivering). */
  closePipeline?: DispatcherOptions;
}

export interface CreateOptions {
  /** Idle timeout in seconds (0 = none); default: the profile's inactivity timeout. */
  timeout?: number;
  /** Lifetime in seconds from now (0 = none); default: the profile's maximum session timeout. */
  lifetime?: number;
  user?: string;
  clientIp?: string;
  /** Default `inprogress` (a gateway session running its policy). */
  state?: SessionState;
  profile?: string;
  /** Initial plain variables. */
  variables?: Record<string, string>;
}

export interface ModifyOptions {
  timeout?: number;
  lifetime?: number;
  /** Seconds from now until the session ends, whatever its lifetime said. */
  remaining?: number;
}

export type ValidateResult =
  | { valid: true; session: SessionRecord }
  | { valid: false; reason: 'malformed' | 'missing' | 'expired'; closedWith?: CloseReason };

/** engine.peek(): validate() without side effects. */
export type PeekResult =
  | { valid: true; session: SessionRecord; touchDue: boolean }
  | { valid: false; reason: 'malformed' | 'missing' }
  | { valid: false; reason: 'expired'; closedWith: CloseReason };

/** validate() on the request path: see SessionStore.validate. */
const LAZY = Object.freeze({ lazyTouch: true });

const MALFORMED: ValidateResult = Object.freeze({ valid: false, reason: 'malformed' });

function validateResult(out: ValidateOutcome): ValidateResult {
  if (out.status === 'valid') return { valid: true, session: out.record };
  if (out.status === 'expired') return { valid: false, reason: 'expired', closedWith: out.reason };
  return { valid: false, reason: 'missing' };
}

const POLICY_RESULT: Record<Exclude<SessionState, 'inprogress'>, string> = {
  allow: 'allowed',
  deny: 'access_denied',
  redirect: 'redirect',
};

/**
 * The session engine: APM's `ACCESS::session` verbs over any `SessionStore`.
 *
 * Client-reachable verbs (`exists`, `validate`) take the token from the cookie; admin verbs
 * take the public id. The two have different shapes and each verb refuses the other.
 *
 * @example
 * ```ts
 * const engine = new SessionEngine({ store: new MemoryStore(), keyring: Keyring.ephemeral() });
 * const { id, token } = await engine.create({ timeout: 900, lifetime: 28800, state: 'allow' });
 * await engine.data.set(id, 'session.custom.team', 'blue');
 * await engine.exists(token, { state: 'allow' }); // true
 * await engine.remove(id); // closes with reason `removed`
 * ```
 */
export class SessionEngine {
  readonly store: SessionStore;
  readonly clock: Clock;
  readonly data: SessionData;
  private readonly profiles = new Map<string, AccessProfile>();
  private readonly touchResolutionMs: number;
  private readonly dispatcher: CloseDispatcher;
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.touchResolutionMs = options.touchResolutionMs ?? 1000;
    for (const p of options.profiles ?? []) this.profiles.set(p.name, p);
    if (!this.profiles.has('default')) this.profiles.set('default', accessProfile('default'));
    const logger = options.logger ?? silentLogger;
    this.data = new SessionData(this.store, options.keyring, this.clock, (name) => this.profile(name));
    this.dispatcher = new CloseDispatcher(
      this.store,
      this.clock,
      logger,
      (record) => this.data.ofSnapshot(record),
      options.closePipeline,
    );
  }

  /** Start a session; returns its public id and the secret token for the client. */
  async create(
    options: CreateOptions = {},
  ): Promise<{ id: SessionId; token: SessionToken; evicted: SessionId[] }> {
    const profile = this.profile(options.profile ?? 'default');
    const state = options.state ?? 'inprogress';
    if (!SESSION_STATES.includes(state)) throw invalidState(state);
    const timeout = parseSeconds(options.timeout ?? profile.inactivityTimeout, 'timeout');
    const lifetime = parseSeconds(options.lifetime ?? profile.maxSessionTimeout, 'lifetime');
    const now = this.clock.now();
    const { id, token } = newToken();
    // session.user.sessionid, .starttime and .clientip are derived from the record.
    const variables: Record<string, string> =
      state === 'inprogress'
        ? mergeStrings(options.variables)
        : mergeStrings(options.variables, { 'session.policy.result': POLICY_RESULT[state] });
    const { evicted } = await this.store.create(
      {
        id,
        state,
        user: options.user ?? null,
        clientIp: options.clientIp ?? null,
        profile: profile.name,
        createdAt: now,
        lastAccessAt: now,
        idleTimeout: timeout,
        lifetime,
        lifetimeDeadline: lifetime > 0 ? now + lifetime * 1000 : null,
        policyDeadline:
          state === 'inprogress' && profile.accessPolicyTimeout > 0
            ? now + profile.accessPolicyTimeout * 1000
            : null,
        variables,
        secure: {},
        cookies: {},
        sessionCookie: {},
      },
      limitsOf(profile),
      now,
    );
    if (evicted.length > 0) this.dispatcher.kick();
    return { id, token, evicted };
  }

  /** Change the timeouts of a live session; `lifetime` and `remaining` exclude each other. */
  async modify(sessionId: SessionId | string, options: ModifyOptions): Promise<SessionRecord> {
    const id = parseSessionId(sessionId);
    if (options.lifetime !== undefined && options.remaining !== undefined) {
      throw new SessionGateError(
        'SG_ERR_LIFETIME_WITH_REMAINING',
        'lifetime and remaining cannot be used together',
      );
    }
    const now = this.clock.now();
    const patch: SessionPatch = {};
    if (options.timeout !== undefined) patch.idleTimeout = parseSeconds(options.timeout, 'timeout');
    if (options.lifetime !== undefined || options.remaining !== undefined) {
      const current = await this.require(id);
      if (options.lifetime !== undefined) {
        const lifetime = parseSeconds(options.lifetime, 'lifetime');
        patch.lifetime = lifetime;
        patch.lifetimeDeadline = lifetime > 0 ? current.createdAt + lifetime * 1000 : null;
      } else {
        const remaining = parseSeconds(options.remaining, 'remaining');
        patch.lifetimeDeadline = now + remaining * 1000;
        patch.lifetime = Math.ceil((patch.lifetimeDeadline - current.createdAt) / 1000);
      }
      return (await this.store.update(id, patch, { now, expectedVersion: current.version })).record;
    }
    return (await this.store.update(id, patch, { now })).record;
  }

  /** Whether the token names a live session (in `state`, if given). Never touches it. */
  async exists(token: SessionToken | string, options: { state?: SessionState } = {}): Promise<boolean> {
    return this.existsById(idOfToken(parseToken(token)), options);
  }

  /** `exists` for admin code that holds the id. */
  async existsById(id: SessionId | string, options: { state?: SessionState } = {}): Promise<boolean> {
    const sid = parseSessionId(id);
    if (options.state !== undefined && !SESSION_STATES.includes(options.state))
      throw invalidState(options.state);
    const s = await this.store.get(sid);
    if (!s || isExpired(s, this.clock.now())) return false;
    return options.state === undefined || s.state === options.state;
  }

  /**
   * The request-path check: is the token's session live? Counts as activity (one atomic
   * store step; touches closer than the resolution are coalesced; a store holding a current
   * copy, the redis near cache, may write the touch just after answering). Never throws for junk.
   */
  validate(token: string): Promise<ValidateResult> {
    try {
      const v = this.check(token);
      return v instanceof Promise ? v : Promise.resolve(v);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * validate(), with the answer returned directly (not in a promise) when the store has it at
   * hand (SessionStore.validateNow): the request path's form. A lookup that waited for nothing
   * then costs no promise and no microtask turns. May throw (a disposed store).
   *
   * @example
   * ```ts
   * const v = engine.check(token);
   * const result = v instanceof Promise ? await v : v;
   * ```
   */
  check(token: string): ValidateResult | Promise<ValidateResult> {
    if (!isToken(token)) return MALFORMED;
    // lazyTouch: a store holding a current copy may answer before its touch is written.
    const out = this.outcome(idOfToken(token), this.clock.now(), this.touchResolutionMs, LAZY);
    return out instanceof Promise ? out.then(validateResult) : validateResult(out);
  }

  /** The store's validate answer: directly when it has it at hand (validateNow), else waited for. */
  private outcome(
    id: SessionId,
    now: number,
    resolutionMs: number,
    options?: { lazyTouch?: boolean },
  ): ValidateOutcome | Promise<ValidateOutcome> {
    return (
      this.store.validateNow?.(id, now, resolutionMs, options) ??
      this.store.validate(id, now, resolutionMs, options)
    );
  }

  /**
   * What validate() would find, without recording activity: no touch. (A session past its
   * deadline is closed, as validate() would; that is no activity, only a fact found out.)
   * `touchDue`: validate() would write a touch now. For work that must come before the access
   * check (HTTP_REQUEST rules) yet wants the record; on Redis it shares validate's batching.
   *
   * @example
   * ```ts
   * const p = await engine.peek(token);
   * if (p.valid && !p.touchDue) use(p.session); // else: await engine.validate(token)
   * ```
   */
  async peek(token: string): Promise<PeekResult> {
    return this.peekNow(token);
  }

  /**
   * peek(), with the answer returned directly when the store has it at hand (as check() is to
   * validate()); the gateway's path for HTTP_REQUEST rules. May throw (a disposed store).
   */
  peekNow(token: string): PeekResult | Promise<PeekResult> {
    if (!isToken(token)) return { valid: false, reason: 'malformed' };
    const now = this.clock.now();
    const out = this.outcome(idOfToken(token), now, Infinity);
    return out instanceof Promise ? out.then((o) => this.peekResult(o, now)) : this.peekResult(out, now);
  }

  private peekResult(out: ValidateOutcome, now: number): PeekResult {
    if (out.status === 'missing') return { valid: false, reason: 'missing' };
    if (out.status === 'expired') return { valid: false, reason: 'expired', closedWith: out.reason };
    const s = out.record;
    return { valid: true, session: s, touchDue: now - s.lastAccessAt >= this.touchResolutionMs };
  }

  /** The id of the session a token belongs to (APM `sid` for a flow's cookie). */
  sid(token: SessionToken | string): SessionId {
    return idOfToken(parseToken(token));
  }

  /** Read one session as stored; null when it does not exist or has expired. */
  async get(id: SessionId | string): Promise<SessionRecord | null> {
    const s = await this.store.get(parseSessionId(id));
    return s && !isExpired(s, this.clock.now()) ? s : null;
  }

  /** A page of live sessions (ones past their deadline but not yet swept are left out). */
  async list(query: ListQuery = {}): Promise<ListPage> {
    const page = await this.store.list(query);
    const now = this.clock.now();
    return { ...page, sessions: page.sessions.filter((s) => !isExpired(s, now)) };
  }

  async listByUser(user: string): Promise<SessionRecord[]> {
    const now = this.clock.now();
    return (await this.store.listByUser(user)).filter((s) => !isExpired(s, now));
  }

  /**
   * End the access policy: set the state and `session.policy.result`; ends the policy timer.
   * `deleteSecure` drops secure variables only the policy needed, in the same write.
   */
  async completePolicy(
    id: SessionId | string,
    state: Exclude<SessionState, 'inprogress'>,
    options: { deleteSecure?: string[] } = {},
  ): Promise<SessionRecord> {
    if (!POLICY_RESULT[state]) throw invalidState(state);
    const patch: SessionPatch = {
      state,
      policyDeadline: null,
      setVariables: { 'session.policy.result': POLICY_RESULT[state] },
    };
    if (options.deleteSecure !== undefined) patch.deleteSecure = options.deleteSecure;
    return (await this.store.update(parseSessionId(id), patch, { now: this.clock.now() })).record;
  }

  /** Associate a user with the session, applying the profile's per-user limit (may evict). */
  async setUser(
    id: SessionId | string,
    user: string,
  ): Promise<{ record: SessionRecord; evicted: SessionId[] }> {
    const current = await this.require(id);
    return this.store.update(
      current.id,
      { user },
      { now: this.clock.now(), limits: limitsOf(this.profile(current.profile)) },
    );
  }

  /** Issue a new token for the session (after logon, against fixation); the old one stops working. */
  async rotate(id: SessionId | string): Promise<{ id: SessionId; token: SessionToken }> {
    const current = await this.require(id);
    const fresh = newToken();
    const reseal = this.data.resealFor(current, fresh.id);
    const moved = await this.store.rekey(
      current.id,
      fresh.id,
      { setSecure: reseal },
      { now: this.clock.now(), expectedVersion: current.version },
    );
    if (!moved) throw sessionNotFound(id);
    return fresh;
  }

  /**
   * Store what a plugin hook returned: the plugin's own `cookie` (its presence marks the
   * plugin as called in this session, so its `session_ended` runs) and, when given, the
   * shared `session_cookie`. One atomic store step, before the next hook runs.
   */
  async savePluginState(
    id: SessionId | string,
    plugin: string,
    cookie: JsonObject,
    sessionCookie?: JsonObject,
  ): Promise<SessionRecord> {
    const patch: SessionPatch = { cookies: { [plugin]: cookie } };
    if (sessionCookie !== undefined) patch.sessionCookie = sessionCookie;
    return (await this.store.update(parseSessionId(id), patch, { now: this.clock.now() })).record;
  }

  /** APM `ACCESS::session remove`: close the session with reason `removed`. */
  async remove(id: SessionId | string): Promise<boolean> {
    return this.close(parseSessionId(id), 'removed');
  }

  /**
   * Close a session with any reason (logout, admin_kill, denied, ...). False if it was gone,
   * or had already expired (it is then closed with its expiry reason).
   */
  async close(id: SessionId | string, reason: CloseReason): Promise<boolean> {
    const closed = await this.store.close(parseSessionId(id), reason, this.clock.now());
    if (closed) this.dispatcher.kick();
    return closed !== null && closed.reason === reason;
  }

  /** Close every session of a user; returns how many closed. */
  async closeUser(user: string, reason: CloseReason): Promise<number> {
    let n = 0;
    for (const s of await this.store.listByUser(user)) if (await this.close(s.id, reason)) n++;
    return n;
  }

  /**
   * Attach tags to a live session, e.g. `oidc-sid:<issuer hash>:<sid>` at an OpenID Connect
   * logon, so that closeByTag on any gateway sharing the store finds it (SessionStore.tag: at
   * most 16 per session, 1..256 characters each, else SG_ERR_INVALID_TAG). False when the
   * session is gone or past its deadline. Tags follow the session through rotate().
   *
   * @example
   * ```ts
   * await engine.tag(id, [`oidc-sid:${issuerHash}:${claims.sid}`, `oidc-sub:${issuerHash}:${claims.sub}`]);
   * ```
   */
  async tag(id: SessionId | string, tags: string[]): Promise<boolean> {
    return this.tagging().tag(parseSessionId(id), tags, this.clock.now());
  }

  /**
   * Close every live session carrying `tag` (back-channel logout: "every session of provider
   * sid X"), each through close(), so the close pipeline delivers each one's session_ended
   * once. Returns how many this call closed with `reason` (not those that had expired or that
   * another process closed first).
   *
   * @example
   * ```ts
   * const n = await engine.closeByTag(`oidc-sid:${issuerHash}:${sid}`, 'logout');
   * ```
   */
  async closeByTag(tag: string, reason: CloseReason): Promise<number> {
    const ids = await this.tagging().findByTag(tag, this.clock.now());
    let n = 0;
    for (const id of ids) if (await this.close(id, reason)) n++;
    return n;
  }

  /**
   * The live sessions carrying `tag` (a bearer token's session: `bearer:<digest>`).
   *
   * @example
   * ```ts
   * const [id] = await engine.findByTag(`bearer:${digest}`);
   * ```
   */
  async findByTag(tag: string): Promise<SessionId[]> {
    return this.tagging().findByTag(tag, this.clock.now());
  }

  /** Close every session past its deadline; returns how many closed. */
  async sweep(batch = 1000): Promise<number> {
    let total = 0;
    for (;;) {
      const closed = await this.store.closeExpired(this.clock.now(), batch);
      total += closed.length;
      if (closed.length < batch) break;
    }
    if (total > 0) this.dispatcher.kick();
    return total;
  }

  /** Register a close-pipeline subscriber: called exactly once per closed session. */
  async onClose(name: string, handler: CloseHandler, options?: SubscriberOptions): Promise<void> {
    await this.dispatcher.subscribe(name, handler, options);
  }

  /** Deliver pending close records to the subscribers once; returns how many were handled. */
  async dispatch(): Promise<number> {
    return this.dispatcher.runOnce();
  }

  /** Run the sweeper and the dispatcher in the background until `stop()`. */
  start(options: { sweepIntervalMs?: number; dispatchIntervalMs?: number } = {}): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setInterval(
      () => void this.sweep().catch(() => undefined),
      options.sweepIntervalMs ?? 1000,
    );
    this.sweepTimer.unref();
    this.dispatcher.start(options.dispatchIntervalMs ?? 250);
  }

  /**
   * Stop the background work. Without `graceMs`, wait for the dispatcher's current round to
   * finish. With it (shutdown): deliver what is due for at most `graceMs`, then hand back every
   * close record still held, so that the next start or another process takes it at once.
   */
  async stop(options: { graceMs?: number } = {}): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    if (options.graceMs === undefined) await this.dispatcher.stop();
    else await this.dispatcher.drain(options.graceMs);
  }

  /** The configuration of a session's profile as it applies to that session now. */
  async config(id: SessionId | string): Promise<Record<string, string>> {
    const s = await this.require(id);
    return effectiveConfig(this.profile(s.profile), s);
  }

  profile(name: string): AccessProfile {
    const p = this.profiles.get(name);
    if (!p) throw new SessionGateError('SG_ERR_CONFIG', `unknown access profile ${JSON.stringify(name)}`);
    return p;
  }

  /** The store's tag methods; every bundled store has them (a custom store may not). */
  private tagging(): Required<Pick<SessionStore, 'tag' | 'findByTag'>> {
    const { tag, findByTag } = this.store;
    if (!tag || !findByTag) {
      throw new SessionGateError(
        'SG_ERR_INTERNAL',
        `the ${this.store.kind} session store has no session tags`,
      );
    }
    return { tag: tag.bind(this.store), findByTag: findByTag.bind(this.store) };
  }

  private async require(id: SessionId | string): Promise<SessionRecord> {
    const s = await this.get(id);
    if (!s) throw sessionNotFound(id);
    return s;
  }
}

function invalidState(state: unknown): SessionGateError {
  return new SessionGateError(
    'SG_ERR_INVALID_STATE',
    `invalid state ${JSON.stringify(state)}: use one of ${SESSION_STATES.join(', ')}`,
  );
}
