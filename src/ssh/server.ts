import { resolve } from 'node:path';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import ssh2 from 'ssh2';
import type { AuditSink } from '../core/audit.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { profileOf } from '../gateway/config/load.js';
import type { GatewayConfig } from '../gateway/config/schema.js';
import type { SshConfig } from '../gateway/config/ssh-schema.js';
import { PolicyRunner } from '../gateway/policy.js';
import { LogonThrottle } from '../gateway/throttle.js';
import type { PluginHost } from '../plugins/host.js';
import type { RuleSet } from '../rules/ruleset.js';
import type { SessionEngine } from '../session/engine.js';
import type { SshRoute } from './access.js';
import { SshConnection, type ConnectionDeps } from './connection.js';
import { loadOrCreateHostKey } from './host-keys.js';
import { KnownHostsFile } from './known-hosts.js';
import { LogonGate } from './logon-gate.js';
import { KeyIndex } from './key-index.js';
import { SessionEvents } from './session-events.js';
import { SessionWatch } from './watch.js';

const { Server: SshServer } = ssh2;

export interface SshStartOptions {
  config: GatewayConfig & { ssh: SshConfig };
  /** The folder relative paths of the config are read against. */
  baseDir: string;
  engine: SessionEngine;
  host: PluginHost;
  rules: RuleSet;
  logger: Logger;
  audit?: AuditSink;
  clock?: Clock;
  /** Override the listener port (tests: 0). */
  port?: number;
  /** Hold back failed logons (ms); default: a random time in the profile's failure_delay_ms. */
  failureDelayMs?: (route: SshRoute) => number;
}

/**
 * The SSH gateway: an SSH server whose every connection is a session of the engine (docs/ssh.md).
 * The user names the target in the user name (`root@db1.internal`), logs on to the gateway
 * through the route's policy and is connected to the target with the credential store's keys
 * or passwords; sessions killed or timed out end their connection within a check interval.
 *
 * @example
 * ```ts
 * const ssh = await SshGateway.start({ config, baseDir, engine, host, rules, logger });
 * // ssh -p 2222 root@db1.internal@127.0.0.1
 * await ssh.close();
 * ```
 */
export class SshGateway {
  private constructor(
    private readonly server: NetServer,
    readonly port: number,
    private readonly watch: SessionWatch,
    private readonly gate: LogonGate,
  ) {}

  static async start(o: SshStartOptions): Promise<SshGateway> {
    const ssh = o.config.ssh;
    const clock = o.clock ?? systemClock;
    const hostKeys = ssh.host_keys.map((f) => loadOrCreateHostKey(resolve(o.baseDir, f)).privateKey);
    const known = new KnownHostsFile(resolve(o.baseDir, ssh.known_hosts), ssh.unknown_hosts, o.logger);
    const keys = new KeyIndex(ssh.authorized_keys);
    const routes = ssh.routes.map((r, index): SshRoute => {
      const profile = profileOf(o.config, r.profile)!;
      const runner = new PolicyRunner(o.engine, o.host, profile, o.logger);
      return { index, config: r, profileName: r.profile, profile, runner };
    });
    const watch = new SessionWatch(o.engine, clock, ssh, o.logger);
    const deps: ConnectionDeps = {
      engine: o.engine,
      host: o.host,
      events: new SessionEvents(o.engine, o.rules, o.logger, o.audit),
      throttle: new LogonThrottle(o.engine.store, clock),
      logger: o.logger,
      ...(o.audit ? { audit: o.audit } : {}),
      clock,
      config: ssh,
      routes,
      verifyHostKey: (h, p, key) => known.verify(h, p, key),
      keyUsers: (blob) => keys.usersOf(blob),
      recordingDir: (route) =>
        route.config.recording ? resolve(o.baseDir, route.config.recording.dir) : undefined,
      failureDelayMs: o.failureDelayMs ?? randomFailureDelay,
      forget: (c) => watch.connections.delete(c),
      renewLease: (c, session) => watch.renewLease(c, session),
      loggedOn: () => undefined, // set below, once the gate exists
    };
    const server = new SshServer(
      { hostKeys, ident: 'sessiongate', ...(ssh.banner ? { banner: ssh.banner } : {}) },
      (client, info) => {
        const c = new SshConnection(client, info, deps);
        watch.connections.add(c);
        c.start();
      },
    );
    const gate = new LogonGate(ssh.max_unauthenticated, (ssh.login_grace_seconds + 2) * 1000, o.logger);
    deps.loggedOn = (info) => gate.loggedOn(info.ip, info.port);
    const listener = createServer((socket) => {
      if (gate.admit(socket)) server.injectSocket(socket);
    });
    const port = await new Promise<number>((done, fail) => {
      listener.once('error', fail);
      listener.listen(o.port ?? ssh.listen.port, ssh.listen.host, () => {
        listener.off('error', fail);
        done((listener.address() as AddressInfo).port);
      });
    });
    listener.on('error', (err: Error) => o.logger.error({ error: err.message }, 'ssh listener error'));
    watch.start();
    return new SshGateway(listener, port, watch, gate);
  }

  /** Look at every connection's session now (tests; the watch does it every check interval). */
  check(): Promise<void> {
    return this.watch.checkAll();
  }

  /**
   * Stop accepting and end every connection (their sessions close with `logout`): each client
   * is told and disconnected; what has not closed after `graceMs` is cut.
   */
  async close(graceMs = 2000): Promise<void> {
    this.watch.stop();
    const closed = new Promise<void>((done) => this.server.close(() => done()));
    for (const c of this.watch.connections) c.sessionEnded('logout', 'the gateway is shutting down');
    this.gate.closeWaiting();
    const cut = setTimeout(() => this.gate.destroyAll(), graceMs);
    await closed;
    clearTimeout(cut);
  }
}

function randomFailureDelay(route: SshRoute): number {
  const { min, max } = route.profile.failure_delay_ms;
  return min + Math.floor(Math.random() * (max - min + 1));
}
