import type { Server } from 'node:http';
import { isAbsolute, resolve } from 'node:path';
import type { AuditSink } from '../core/audit.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { PluginHost } from '../plugins/host.js';
import { loadPlugins } from '../plugins/load.js';
import { SessionEngine } from '../session/engine.js';
import { Keyring } from '../session/keyring.js';
import type { SessionStore } from '../store/contract.js';
import { openStore } from '../store/open.js';
import { ruleContext } from '../rules/context.js';
import { RuleSet } from '../rules/ruleset.js';
import { cidrList, profileOf, type LoadedConfig } from './config/load.js';
import type { GatewayConfig } from './config/schema.js';
import { startDemoUpstream } from './demo-upstream.js';
import { CredentialInjector } from './credentials.js';
import { Gateway } from './gateway.js';
import { createListener, listen, stopListener } from './listener.js';
import { AssertionKeys } from './identity/assertion.js';
import { assertionWanted, identityPlan } from './identity/plan.js';
import { PolicyRunner, type PolicyEvents } from './policy.js';
import { BackchannelLogout } from './oidc-backchannel.js';
import { BearerTokens, type BearerProvider, type Introspector } from './bearer.js';
import { TokenRefresh, type Refresher } from './oidc-refresh.js';
import { oidcConfigSchema } from '../plugins/builtin/oidc-config.js';
import { tokenIntrospector, tokenRefresher } from '../plugins/builtin/oidc-client.js';
import type { PluginEnvironment } from '../plugins/builtin/environment.js';
import { Upstream } from './proxy/upstream.js';
import { engineProfile, type ActiveRoute } from './router.js';
import { loadUserFiles } from './user-files.js';
import { UserPages } from './user-pages.js';

export interface StartOptions {
  logger: Logger;
  clock?: Clock;
  /** Override the listener port (tests use 0 for a free port). */
  port?: number;
  /** Hook points for rules. */
  events?: PolicyEvents;
  /** Hold back failed logons (ms); default: a random time in the profile's failure_delay_ms. */
  failureDelayMs?: (route: ActiveRoute) => number;
  /** Told of every failed rule handler (metrics). */
  onRuleError?: (rule: string) => void;
  /** Audit records of session starts and policy results (the admin layer provides the sink). */
  audit?: AuditSink;
  /** Told of every request (route, status, seconds; status 499: the client went away before
   * the answer was complete): the admin layer's metrics. */
  observeRequest?: (route: string, status: number, seconds: number) => void;
  /** Wrap the opened store (the admin layer times its operations). */
  wrapStore?: (store: SessionStore) => SessionStore;
}

/** A gateway that runs: its address, its parts, and a graceful stop. */
export interface RunningGateway {
  url: string;
  server: Server;
  engine: SessionEngine;
  host: PluginHost;
  gateway: Gateway;
  store: SessionStore;
  /** The rules of the config's top-level `rules` (the SSH gateway raises its events on them). */
  rules: RuleSet;
  /** Stop accepting, finish requests in flight (at most `graceMs`), flush the close pipeline. */
  close(graceMs?: number): Promise<void>;
}

/** `sqlite:relative/path` in a config file means relative to the file. */
export function storeUrlFor(url: string, baseDir: string): string {
  const m = /^sqlite:(?:\/\/)?(.+)$/.exec(url);
  if (!m?.[1] || isAbsolute(m[1]) || m[1] === ':memory:') return url;
  return `sqlite:${resolve(baseDir, m[1])}`;
}

/**
 * Build and start a gateway from a checked configuration: store, key ring, engine, plugins,
 * routes with their upstream pools and policies, and the listener.
 *
 * @example
 * ```ts
 * const running = await startGateway(loadConfig('./sessiongate.yaml'), { logger });
 * process.on('SIGTERM', () => void running.close());
 * ```
 */
export async function startGateway(loaded: LoadedConfig, o: StartOptions): Promise<RunningGateway> {
  const { config, baseDir } = loaded;
  // The operator's rule and plugin files first: one that does not load stops the start before
  // anything is opened, with every such file reported (ConfigError).
  const loadedRules = await loadUserFiles(loaded);
  const keyring = Keyring.loadOrCreate(resolve(baseDir, config.keys), { signing: assertionWanted(config) });
  // What is opened is closed again, last first, when a later step fails (a taken port, a
  // plugin that does not start): a failed start leaves no store handle, process or server.
  const opened: (() => Promise<void> | void)[] = [];
  try {
    const rawStore = await openStore(storeUrlFor(config.store, baseDir));
    const store = o.wrapStore ? o.wrapStore(rawStore) : rawStore;
    opened.push(() => store.dispose());
    const engine = newEngine(config, store, keyring, o);
    const host = new PluginHost(
      engine,
      await loadPlugins(config.plugins, { baseDir, keyring, logger: o.logger, clock: engine.clock }),
      o.logger,
    );
    opened.push(() => host.close());
    await host.start();
    const ruleSetOf = (files: string[]) =>
      new RuleSet(
        files.map((f) => loadedRules.get(f)!),
        config.rule_timeout_ms,
        o.logger,
        o.onRuleError,
      );
    await subscribeClosedRules(engine, ruleSetOf([...loadedRules.keys()]), o.logger);
    const { routes, demo } = await buildRoutes(config, { engine, host, keyring, ruleSetOf }, o);
    opened.push(
      () => closeServer(demo?.server),
      async () => void (await Promise.all(routes.map((r) => r.upstream.close()))),
    );
    const oidc = oidcClients(config, { baseDir, keyring, logger: o.logger });
    const gateway = newGateway(config, engine, host, routes, o, { keyring, baseDir, oidc });
    const listener = createListener(config, baseDir, gateway);
    opened.push(() => closeServer(listener.server));
    const port = await listen(listener.server, o.port ?? config.listen.port, config.listen.host);
    engine.start();
    const host4url = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
    let closing: Promise<void> | undefined;
    const close = (graceMs = 10_000): Promise<void> =>
      (closing ??= (async () => {
        await stopListener(listener, graceMs);
        // Flush the close pipeline, bounded: a hanging or failing subscriber must not hold up
        // the exit; what is left is handed back in the outbox for the next start or another process.
        await engine.stop({ graceMs: config.close_pipeline.shutdown_grace_ms });
        await host.close();
        await Promise.all(routes.map((r) => r.upstream.close()));
        await store.dispose();
        demo?.server.close();
      })());
    const url = `${listener.tls ? 'https' : 'http'}://${host4url}:${port}`;
    const rules = ruleSetOf(config.rules);
    return { url, server: listener.server, engine, host, gateway, store, rules, close };
  } catch (err) {
    for (const undo of opened.reverse()) await Promise.resolve(undo()).catch(() => undefined);
    throw err;
  }
}

function newEngine(
  config: GatewayConfig,
  store: SessionStore,
  keyring: Keyring,
  o: StartOptions,
): SessionEngine {
  const names = new Set(['default', ...Object.keys(config.profiles)]);
  return new SessionEngine({
    store,
    keyring,
    profiles: [...names].map((name) => engineProfile(name, profileOf(config, name)!)),
    logger: o.logger,
    touchResolutionMs: config.touch_resolution_ms,
    ...(o.clock ? { clock: o.clock } : {}),
  });
}

/** ACCESS_SESSION_CLOSED comes from the close pipeline, once per session, for every rule file. */
async function subscribeClosedRules(
  engine: SessionEngine,
  closedRules: RuleSet,
  logger: Logger,
): Promise<void> {
  if (!closedRules.has('ACCESS_SESSION_CLOSED')) return;
  await engine.onClose('rules', async (event) => {
    const scope = { engine, logger, sessionId: event.sessionId, snapshot: event.data };
    await closedRules
      .run(
        'ACCESS_SESSION_CLOSED',
        (rule) => ruleContext('ACCESS_SESSION_CLOSED', rule, scope),
        event.sessionId,
      )
      .catch(() => undefined); // logged and counted by the rule set; not retried
  });
}

interface RouteParts {
  engine: SessionEngine;
  host: PluginHost;
  keyring: Keyring;
  ruleSetOf: (files: string[]) => RuleSet;
}

/** Each route with its upstream pool, policy runner, rules and identity plan. */
async function buildRoutes(
  config: GatewayConfig,
  { engine, host, keyring, ruleSetOf }: RouteParts,
  o: StartOptions,
): Promise<{ routes: ActiveRoute[]; demo: Awaited<ReturnType<typeof startDemoUpstream>> | undefined }> {
  const assertionKeys = new AssertionKeys(keyring.signing);
  let demo: Awaited<ReturnType<typeof startDemoUpstream>> | undefined;
  const routes: ActiveRoute[] = [];
  for (const [index, r] of config.routes.entries()) {
    if (r.upstream === 'demo') demo ??= await startDemoUpstream();
    const profile = profileOf(config, r.profile)!;
    const url = r.upstream === 'demo' ? demo!.url : r.upstream;
    routes.push({
      index,
      config: r,
      host: r.match.host,
      pathPrefix: r.match.path,
      profileName: r.profile,
      profile,
      upstreamUrl: url,
      upstream: new Upstream({
        url,
        connectTimeoutMs: r.timeouts.connect_ms,
        headersTimeoutMs: r.timeouts.headers_ms,
        bodyTimeoutMs: r.timeouts.body_ms,
        preserveHost: r.preserve_host,
      }),
      runner: new PolicyRunner(engine, host, profile, o.logger, o.events),
      rules: ruleSetOf([...config.rules, ...r.rules]),
      identity: identityPlan(profile, r, assertionKeys, o.clock ?? systemClock),
    });
  }
  return { routes, demo };
}

function newGateway(
  config: GatewayConfig,
  engine: SessionEngine,
  host: PluginHost,
  routes: ActiveRoute[],
  o: StartOptions,
  { keyring, baseDir, oidc }: { keyring: Keyring; baseDir: string; oidc: OidcClients },
): Gateway {
  const providers = oidcProviders(config);
  return new Gateway({
    engine,
    routes,
    trusted: cidrList(config.trusted_proxies),
    logger: o.logger,
    credentials: new CredentialInjector(engine, host, o.logger),
    backchannel: new BackchannelLogout(providers, engine, o.logger),
    bearer: new BearerTokens(providers, engine, o.logger, o.audit, oidc.introspectors),
    ...(oidc.refreshers.size > 0 ? { refresh: new TokenRefresh(oidc.refreshers, engine, o.logger) } : {}),
    ...(o.audit ? { audit: o.audit } : {}),
    ...(o.observeRequest ? { observeRequest: o.observeRequest } : {}),
    userPages: new UserPages({
      engine,
      routes,
      keyring,
      baseDir,
      plugins: config.plugins,
      logger: o.logger,
      audit: o.audit,
      failureDelayMs: o.failureDelayMs,
    }),
    failureDelayMs:
      o.failureDelayMs ??
      ((route) => {
        const { min, max } = route.profile.failure_delay_ms;
        return min + Math.floor(Math.random() * (max - min + 1));
      }),
  });
}

/** The OpenID providers of the config's `oidc` plugins: back-channel logout, bearer tokens. */
function oidcProviders(config: GatewayConfig): BearerProvider[] {
  return config.plugins.flatMap((p) => {
    if (p.runtime !== 'builtin' || p.type !== 'oidc') return [];
    const s = oidcConfigSchema.safeParse(p.config);
    if (!s.success) return [];
    return [
      {
        plugin: p.name,
        issuer: s.data.issuer,
        clientId: s.data.client_id,
        algorithms: [...s.data.id_token_algorithms],
        clockSkewSeconds: s.data.clock_skew_seconds,
        timeoutMs: s.data.timeout_ms,
        userClaim: s.data.user_claim,
        groupsClaim: s.data.groups_claim,
      },
    ];
  });
}

interface OidcClients {
  refreshers: Map<string, Refresher>;
  introspectors: Map<string, Introspector>;
}

/** The refresh grant and the token introspection of each `oidc` plugin, by plugin name. */
function oidcClients(config: GatewayConfig, env: PluginEnvironment): OidcClients {
  const out: OidcClients = { refreshers: new Map(), introspectors: new Map() };
  for (const p of config.plugins) {
    if (p.runtime !== 'builtin' || p.type !== 'oidc') continue;
    out.refreshers.set(p.name, tokenRefresher(p.config, { ...env, name: p.name }));
    out.introspectors.set(p.name, tokenIntrospector(p.config, { ...env, name: p.name }));
  }
  return out;
}

/** Close a server that may never have listened; resolves once it is closed. */
function closeServer(server: Server | undefined): Promise<void> {
  return new Promise((done) => (server ? server.close(() => done()) : done()));
}
