import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import type { Duplex } from 'node:stream';
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
import { AssertionKeys } from './identity/assertion.js';
import { assertionWanted, identityPlan } from './identity/plan.js';
import { PolicyRunner, type PolicyEvents } from './policy.js';
import { Upstream } from './proxy/upstream.js';
import { engineProfile, type ActiveRoute } from './router.js';
import { loadUserFiles } from './user-files.js';

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
  const assertionKeys = new AssertionKeys(keyring.signing);
  const opened = await openStore(storeUrlFor(config.store, baseDir));
  const store = o.wrapStore ? o.wrapStore(opened) : opened;
  const names = new Set(['default', ...Object.keys(config.profiles)]);
  const profiles = [...names].map((name) => engineProfile(name, profileOf(config, name)!));
  const engine = new SessionEngine({
    store,
    keyring,
    profiles,
    logger: o.logger,
    touchResolutionMs: config.touch_resolution_ms,
    ...(o.clock ? { clock: o.clock } : {}),
  });
  const host = new PluginHost(
    engine,
    await loadPlugins(config.plugins, { baseDir, keyring, logger: o.logger }),
    o.logger,
  );
  await host.start();
  const ruleSetOf = (files: string[]) =>
    new RuleSet(
      files.map((f) => loadedRules.get(f)!),
      config.rule_timeout_ms,
      o.logger,
      o.onRuleError,
    );
  // ACCESS_SESSION_CLOSED comes from the close pipeline, once per session, for every rule file.
  const closedRules = ruleSetOf([...loadedRules.keys()]);
  if (closedRules.has('ACCESS_SESSION_CLOSED')) {
    await engine.onClose('rules', async (event) => {
      const scope = { engine, logger: o.logger, sessionId: event.sessionId, snapshot: event.data };
      await closedRules
        .run(
          'ACCESS_SESSION_CLOSED',
          (rule) => ruleContext('ACCESS_SESSION_CLOSED', rule, scope),
          event.sessionId,
        )
        .catch(() => undefined); // logged and counted by the rule set; not retried
    });
  }
  let demo: Awaited<ReturnType<typeof startDemoUpstream>> | undefined;
  const routes: ActiveRoute[] = [];
  for (const [index, r] of config.routes.entries()) {
    if (r.upstream === 'demo') demo ??= await startDemoUpstream();
    const profile = profileOf(config, r.profile)!;
    routes.push({
      index,
      config: r,
      host: r.match.host,
      pathPrefix: r.match.path,
      profileName: r.profile,
      profile,
      upstreamUrl: r.upstream === 'demo' ? demo!.url : r.upstream,
      upstream: new Upstream({
        url: r.upstream === 'demo' ? demo!.url : r.upstream,
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
  const gateway = new Gateway({
    engine,
    routes,
    trusted: cidrList(config.trusted_proxies),
    logger: o.logger,
    credentials: new CredentialInjector(engine, host, o.logger),
    ...(o.audit ? { audit: o.audit } : {}),
    ...(o.observeRequest ? { observeRequest: o.observeRequest } : {}),
    failureDelayMs:
      o.failureDelayMs ??
      ((route) => {
        const { min, max } = route.profile.failure_delay_ms;
        return min + Math.floor(Math.random() * (max - min + 1));
      }),
  });
  const tls = config.listen.tls;
  const serverOptions = { maxHeaderSize: config.listen.max_header_bytes };
  const server = tls
    ? createHttpsServer(
        {
          ...serverOptions,
          cert: readFileSync(resolve(baseDir, tls.cert)),
          key: readFileSync(resolve(baseDir, tls.key)),
        },
        withHsts(gateway.handle, config.listen.hsts),
      )
    : createHttpServer(serverOptions, gateway.handle);
  // A client may send its requests and then half-close (FIN): Node's default aborts the
  // requests still being answered (every proxied one) and ends the connection without their
  // answers. With this, the received requests are answered, then the connection is ended.
  (server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
  server.on('upgrade', gateway.upgrade);
  // Upgraded sockets (WebSockets) leave the HTTP server's bookkeeping: closeAllConnections()
  // does not see them, and server.close() would wait for them forever.
  const tunnels = new Set<Duplex>();
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? config.listen.port, config.listen.host, () => {
      server.off('error', fail);
      ok();
    });
  });
  engine.start();
  const { port } = server.address() as AddressInfo;
  const host4url = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  let closing: Promise<void> | undefined;
  const close = (graceMs = 10_000): Promise<void> =>
    (closing ??= (async () => {
      const stopped = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        server.closeAllConnections();
        for (const socket of tunnels) socket.destroy();
      }, graceMs);
      await stopped;
      clearTimeout(timer);
      // Flush the close pipeline, bounded: a hanging or failing subscriber must not hold up the
      // exit; what is left is handed back in the outbox for the next start or another process.
      await engine.stop({ graceMs: config.close_pipeline.shutdown_grace_ms });
      await host.close();
      await Promise.all(routes.map((r) => r.upstream.close()));
      await store.dispose();
      demo?.server.close();
    })());
  return {
    url: `${tls ? 'https' : 'http'}://${host4url}:${port}`,
    server,
    engine,
    host,
    gateway,
    store,
    close,
  };
}

/** The request listener of a TLS listener: Strict-Transport-Security on every answer. */
function withHsts(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  hsts: GatewayConfig['listen']['hsts'],
): (req: IncomingMessage, res: ServerResponse) => void {
  if (!hsts) return handle;
  const value =
    `max-age=${hsts.max_age}` +
    (hsts.include_subdomains ? '; includeSubDomains' : '') +
    (hsts.preload ? '; preload' : '');
  return (req, res) => {
    res.setHeader('strict-transport-security', value);
    handle(req, res);
  };
}
