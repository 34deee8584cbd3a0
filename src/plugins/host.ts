import { SessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { silentLogger } from '../core/logger.js';
import type { JsonObject } from '../core/session-types.js';
import type { SessionEngine } from '../session/engine.js';
import { PluginCallError } from './errors.js';
import type { PluginRuntime } from './runtime.js';
import { HooksInFlight } from './in-flight.js';
import { HookStats } from './stats.js';
import {
  argumentsFor,
  type AaResult,
  type ConnectionFacts,
  type HookName,
  type HookResult,
  type PluginKind,
} from './types.js';
import { aaResult, checkKind, checkResult, credentialResult } from './validate-result.js';

export interface HostedPlugin {
  name: string;
  runtime: PluginRuntime;
  /** Deadline of one hook call in ms (default 10 s). */
  timeoutMs?: number;
}

/** The result of one raw hook call: what the plugin said, or how it failed. */
export type Invocation =
  | { ok: true; result: HookResult; cookie?: JsonObject; sessionCookie?: JsonObject }
  | { ok: false; failure: PluginCallError['failure']; message: string };

export interface AaOutcome extends AaResult {
  /** Set when the plugin failed and the verdict is the host's DENY. */
  failure?: string;
}

/**
 * Hosts plugins in the model of SPS: calls their hooks with the connection facts and the two
 * cookies, stores what they return with the session before the next hook runs, enforces a
 * deadline per call, turns every failure into DENY (aa) or no credentials (credential store),
 * and runs `session_ended` exactly once per session for every plugin the session called,
 * through the engine's close pipeline.
 *
 * @example
 * ```ts
 * const host = new PluginHost(engine, [{ name: 'users', runtime }], logger);
 * await host.start();
 * const out = await host.authenticate('users', sessionId, { gateway_user: 'alice', key_value_pairs: { password } });
 * ```
 */
export class PluginHost {
  readonly stats = new HookStats();
  private readonly inFlight = new HooksInFlight();
  private readonly plugins = new Map<string, Required<HostedPlugin>>();

  constructor(
    private readonly engine: SessionEngine,
    plugins: HostedPlugin[],
    private readonly logger: Logger = silentLogger,
  ) {
    for (const p of plugins) {
      if (this.plugins.has(p.name))
        throw new SessionGateError('SG_ERR_CONFIG', `plugin name ${p.name} is used twice`);
      this.plugins.set(p.name, { timeoutMs: 10_000, ...p });
      this.stats.watch(p.name, p.runtime);
    }
  }

  /** Subscribe every plugin's `session_ended` to the close pipeline. */
  async start(): Promise<void> {
    for (const p of this.plugins.values()) {
      await this.engine.onClose(`plugin:${p.name}`, async (event) => {
        if (!Object.hasOwn(event.snapshot.cookies, p.name)) return; // never called in this session
        const cookie = await this.inFlight.settled(event.sessionId, p.name);
        const out = await this.invoke(p.name, 'session_ended', event.sessionId, {
          session_id: event.sessionId,
          cookie: cookie ?? event.snapshot.cookies[p.name] ?? {},
          session_cookie: event.snapshot.sessionCookie,
        });
        if (!out.ok)
          throw new PluginCallError(out.failure, `session_ended failed (${out.failure}): ${out.message}`);
      });
    }
  }

  names(): string[] {
    return [...this.plugins.keys()];
  }

  kindOf(name: string): PluginKind {
    return this.plugin(name).runtime.kind;
  }

  async authenticate(name: string, sessionId: string, facts: ConnectionFacts): Promise<AaOutcome> {
    return this.aa(name, 'authenticate', sessionId, facts);
  }

  async authorize(name: string, sessionId: string, facts: ConnectionFacts): Promise<AaOutcome> {
    return this.aa(name, 'authorize', sessionId, facts);
  }

  async getPasswordList(name: string, sessionId: string, facts: ConnectionFacts): Promise<string[]> {
    const out = await this.forSession(name, 'get_password_list', sessionId, facts);
    return out.ok ? (credentialResult(out.result).passwords ?? []) : [];
  }

  async getPrivateKeyList(
    name: string,
    sessionId: string,
    facts: ConnectionFacts,
  ): Promise<[string, string][]> {
    const out = await this.forSession(name, 'get_private_key_list', sessionId, facts);
    return out.ok ? (credentialResult(out.result).private_keys ?? []) : [];
  }

  async authenticationCompleted(name: string, sessionId: string): Promise<boolean> {
    return (await this.forSession(name, 'authentication_completed', sessionId, {})).ok;
  }

  /**
   * Call one hook for a live session: read this plugin's cookie and the session cookie, call,
   * store what came back. Never throws for a plugin's failure (see `Invocation`).
   */
  async forSession(
    name: string,
    hook: HookName,
    sessionId: string,
    facts: ConnectionFacts,
  ): Promise<Invocation> {
    const session = await this.engine.get(sessionId);
    if (!session) return { ok: false, failure: 'exception', message: `session ${sessionId} is gone` };
    const cookie = session.cookies[name] ?? {};
    if (!Object.hasOwn(session.cookies, name)) {
      // Taking part starts with the call: record it first, in one step with the session's
      // liveness, so that a close while the hook runs still owes this plugin its session_ended.
      const marked = await this.engine.savePluginState(sessionId, name, cookie).catch(goneAsNull);
      if (!marked) return { ok: false, failure: 'exception', message: `session ${sessionId} is gone` };
    }
    const done = this.inFlight.begin(sessionId, name);
    let out: Invocation | undefined;
    try {
      out = await this.invoke(name, hook, sessionId, {
        ...facts,
        session_id: sessionId,
        cookie,
        session_cookie: session.sessionCookie,
      });
      const next = out.ok ? out : { cookie: undefined, sessionCookie: undefined };
      await this.engine.savePluginState(sessionId, name, next.cookie ?? cookie, next.sessionCookie);
      done(undefined);
      return out;
    } catch (err) {
      // The session closed while the hook ran: its session_ended gets what the hook returned.
      done(out?.ok ? out.cookie : undefined);
      throw err;
    }
  }

  /**
   * Call one hook with explicit arguments and no session (the building block, and
   * `sessiongate plugin run`). Checks the result's cookies; never throws for the plugin.
   */
  async invoke(
    name: string,
    hook: HookName,
    sessionId: string,
    args: ConnectionFacts & { session_id: string; cookie: JsonObject; session_cookie: JsonObject },
  ): Promise<Invocation> {
    const p = this.plugin(name);
    const started = performance.now();
    const ctx = { plugin: name, sessionId, deadline: Date.now() + p.timeoutMs, logger: this.logger };
    let timer: NodeJS.Timeout | undefined;
    try {
      checkKind(p.runtime.kind, hook);
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new PluginCallError('timeout', `no answer within ${p.timeoutMs} ms`)),
          p.timeoutMs,
        );
      });
      const result = await Promise.race([p.runtime.call(hook, argumentsFor(hook, args), ctx), deadline]);
      // Every field is checked before anything is stored: a malformed result changes nothing.
      const cookies = checkResult(hook, result);
      this.stats.record(name, hook, performance.now() - started);
      return { ok: true, result, ...cookies };
    } catch (err) {
      const e =
        err instanceof PluginCallError
          ? err
          : new PluginCallError('exception', err instanceof Error ? err.message : String(err));
      if (e.failure === 'timeout') p.runtime.abandon?.(hook, ctx);
      this.stats.record(name, hook, performance.now() - started, e.failure);
      this.logger.warn(
        { plugin: name, hook, sessionId, failure: e.failure, error: e.message },
        'plugin hook failed',
      );
      return { ok: false, failure: e.failure, message: e.message };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.plugins.values()].map((p) => p.runtime.close().catch(() => undefined)));
  }

  private async aa(
    name: string,
    hook: 'authenticate' | 'authorize',
    sessionId: string,
    facts: ConnectionFacts,
  ) {
    const out = await this.forSession(name, hook, sessionId, facts);
    if (!out.ok) return { verdict: 'DENY' as const, failure: out.failure };
    try {
      return aaResult(out.result);
    } catch (err) {
      this.logger.warn(
        { plugin: name, hook, sessionId, error: (err as Error).message },
        'plugin result malformed',
      );
      this.stats.record(name, hook, 0, 'malformed');
      return { verdict: 'DENY' as const, failure: 'malformed' };
    }
  }

  private plugin(name: string): Required<HostedPlugin> {
    const p = this.plugins.get(name);
    if (!p) throw new SessionGateError('SG_ERR_CONFIG', `no plugin named ${JSON.stringify(name)}`);
    return p;
  }
}

function goneAsNull(err: unknown): null {
  if (err instanceof SessionGateError && err.code === 'SG_ERR_SESSION_NOT_FOUND') return null;
  throw err;
}
