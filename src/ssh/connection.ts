import type { AuthContext, Client, ClientInfo, Connection, ServerChannel } from 'ssh2';
import { noAudit, type AuditSink } from '../core/audit.js';
import { isSessionGateError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { CloseReason, SessionRecord } from '../core/session-types.js';
import type { PolicyInput, PolicyOutcome } from '../gateway/policy.js';
import type { LogonThrottle } from '../gateway/throttle.js';
import type { SshConfig } from '../gateway/config/ssh-schema.js';
import type { PluginHost } from '../plugins/host.js';
import type { SessionEngine } from '../session/engine.js';
import {
  envAllowed,
  mayReach,
  needsGatewayLogon,
  routeFor,
  type GatewayIdentity,
  type SshRoute,
} from './access.js';
import { bridgeSession } from './channels.js';
import { parseDestination, type Destination } from './destination.js';
import { bridgeForwarding } from './forwarding.js';
import { GatewayLogon, type LogonStep } from './logon.js';
import { runSshPolicy } from './policy-run.js';
import type { SessionEvents } from './session-events.js';
import { logOnToTarget } from './target-logon.js';

/** What every connection of one SSH gateway shares. */
export interface ConnectionDeps {
  engine: SessionEngine;
  host: PluginHost;
  events: SessionEvents;
  throttle: LogonThrottle;
  logger: Logger;
  audit?: AuditSink;
  clock: Clock;
  config: SshConfig;
  routes: readonly SshRoute[];
  verifyHostKey(host: string, port: number, key: Buffer): true | string;
  keyUsers(blob: Buffer): string[];
  /** The recording folder of a route that records (resolved against the config's folder). */
  recordingDir(route: SshRoute): string | undefined;
  /** Hold back a failed logon (ms): the profile's failure delay. */
  failureDelayMs(route: SshRoute): number;
  forget(connection: SshConnection): void;
  /** The connection logged on: its socket is no longer counted among those that have not. */
  loggedOn(info: ClientInfo): void;
  /** Renew the session's lease (its end unless renewed: what frees it when this process dies). */
  renewLease(connection: SshConnection, session: SessionRecord): Promise<void>;
}

/** Messages for the client when the gateway ends its session. */
/** How long an ending connection waits for the client to close its channels (see disconnectAfterChannels). */
const CHANNEL_CLOSE_GRACE_MS = 1000;

const ENDINGS: Partial<Record<CloseReason, string>> = {
  idle_timeout: 'the session was idle for too long and has ended',
  lifetime_expired: 'the session reached its maximum lifetime and has ended',
  policy_timeout: 'the logon took too long',
};

/**
 * One client connection to the SSH gateway, which is one session: the session starts with
 * the first authentication request (the user name names the target), the gateway logon runs
 * the route's policy, the allow-list decides the target, the target is logged on with the
 * credential store's keys and passwords, and channels pass through until either side ends,
 * a kill, or a timeout; the session then closes, once.
 */
export class SshConnection {
  sessionId: string | undefined;
  /** The session's token: the liveness checks and activity touches use it. */
  token: string | undefined;
  /** The session's own end of life (the profile's lifetime), which the renewed lease never passes. */
  lifetimeDeadline: number | null = null;
  leaseRenewedAt = 0;
  /** The end the last lease renewal wrote (another value in the store: someone else moved it). */
  leaseDeadline: number | null | undefined;
  /** Channel data since the last check: the check then counts it as activity. */
  active = false;
  private dest: Destination | undefined;
  private route: SshRoute | undefined;
  private logon: GatewayLogon | undefined;
  private authChain: Promise<void> = Promise.resolve();
  private target: Promise<Client | string> | undefined;
  private targetClient: Client | undefined;
  private readonly channels = new Set<ServerChannel>();
  private bytes = { to_target: 0, to_client: 0 };
  private closeReason: CloseReason = 'logout';
  private recordedChannels = 0;
  private sessionClosed = false;
  private ended = false;
  /** Past the gateway logon (the client's authentication was accepted). */
  loggedOn = false;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Connection,
    private readonly info: ClientInfo,
    private readonly d: ConnectionDeps,
  ) {}

  start(): void {
    // A client that never finishes logging on holds a socket and maybe an in-progress session.
    this.graceTimer = setTimeout(() => {
      if (this.loggedOn) return;
      this.d.logger.info({ clientIp: this.info.ip, sessionId: this.sessionId }, 'ssh logon took too long');
      this.end('policy_timeout');
    }, this.d.config.login_grace_seconds * 1000);
    this.graceTimer.unref();
    this.client.on('authentication', (ctx: AuthContext) => {
      this.authChain = this.authChain
        .then(() => this.authenticate(ctx))
        .catch((err: unknown) => {
          this.d.logger.error(
            { sessionId: this.sessionId, error: (err as Error).message },
            'ssh logon failed',
          );
          if (!this.ended) ctx.reject([]);
          this.end('removed');
        });
    });
    this.client.on('session', (accept) => {
      if (!this.target) return void accept().close();
      bridgeSession(accept(), this.channelContext());
    });
    bridgeForwarding(this.client, {
      forwarding: () => this.route?.config.forwarding ?? { local: false, remote: false },
      target: () => this.target ?? Promise.resolve('not logged on'),
      counted: (direction, n) => this.counted(direction, n),
      logger: this.d.logger,
    });
    this.client.on('error', (err) =>
      this.d.logger.debug?.({ sessionId: this.sessionId, error: err.message }, 'ssh client connection error'),
    );
    this.client.on('close', () => void this.closed());
  }

  get live(): boolean {
    return this.sessionId !== undefined && !this.sessionClosed && !this.ended;
  }

  private async authenticate(ctx: AuthContext): Promise<void> {
    if (this.ended) return ctx.reject([]);
    if (this.refusal === undefined && !this.logon) this.refusal = await this.begin(ctx.username);
    if (this.refusal !== undefined) return this.refuseAtStart(ctx, this.refusal);
    if (ctx.username !== this.firstUsername) return ctx.reject([]); // the target is chosen once per connection
    const step = await this.logon!.handle(ctx);
    return this.settle(step);
  }

  private firstUsername: string | undefined;
  /** Why this connection was refused before any logon (its message is shown, then it ends). */
  private refusal: string | undefined;

  /** Parse the destination, find the route, start the session; a message when that fails. */
  private async begin(username: string): Promise<string | undefined> {
    this.firstUsername = username;
    const dest = parseDestination(username);
    if ('error' in dest) return dest.error;
    const route = routeFor(this.d.routes, dest);
    if (!route) return `no SSH route leads to ${dest.host}:${dest.port}`;
    const started = await this.d.events.started(route, dest, this.info);
    if (!started) return 'the session was refused';
    this.dest = dest;
    this.route = route;
    this.sessionId = started.id;
    this.token = started.token;
    this.logon = new GatewayLogon({
      dest,
      needsLogon: needsGatewayLogon(route),
      relaysPassword: route.config.credentials === undefined,
      keyUsers: (blob) => this.d.keyUsers(blob),
      runPolicy: (input) => this.runPolicy(input),
    });
    return undefined;
  }

  /**
   * Refused before any logon: keyboard-interactive shows the message (OpenSSH prints it at its
   * default log level), then the connection ends; other methods are sent there first.
   */
  private refuseAtStart(ctx: AuthContext, message: string): void {
    if (ctx.method !== 'keyboard-interactive') {
      ctx.reject(['keyboard-interactive']);
      return this.endSoon();
    }
    this.d.logger.info({ clientIp: this.info.ip, message }, 'ssh connection refused');
    this.refuseFinally(ctx, message, this.closeReason);
  }

  /**
   * The last answer to a client: the message where keyboard-interactive can show it (OpenSSH
   * prints it at its default log level), then the refusal, then the end of the connection (a
   * client would otherwise try again).
   */
  private refuseFinally(ctx: AuthContext, message: string, reason: CloseReason): void {
    const finish = () => {
      ctx.reject([]);
      this.end(reason);
    };
    if (ctx.method === 'keyboard-interactive')
      ctx.prompt([], 'sessiongate', `sessiongate: ${message}\n`, finish);
    else finish();
  }

  private runPolicy(input: PolicyInput): Promise<PolicyOutcome> {
    const c = { route: this.route!, dest: this.dest!, info: this.info, sessionId: this.sessionId! };
    return runSshPolicy(this.d, c, input);
  }

  private async settle(step: LogonStep): Promise<void> {
    if (step.kind === 'pending') return;
    const id = this.sessionId!;
    if (step.kind === 'denied') {
      await this.d.events.completed(id, 'deny', this.info.ip);
      await this.closeSession('denied');
      return this.refuseFinally(step.ctx, step.reason, 'denied');
    }
    await this.d.events.completed(id, 'allow', this.info.ip);
    const who = await this.d.events.identity(id);
    const allowed = mayReach(this.route!, who, this.dest!);
    await this.d.events.acl(id, allowed);
    step.ctx.accept();
    this.loggedOn = true;
    clearTimeout(this.graceTimer);
    this.d.loggedOn(this.info);
    if (!allowed) {
      const { targetUser, host, port } = this.dest!;
      const message = `${who.user ?? 'this user'} may not log on as ${targetUser} to ${host}:${port}`;
      this.audit({ event: 'ssh_target', result: 'denied', message });
      this.target = Promise.resolve(message);
      await this.closeSession('denied');
      return this.endSoon();
    }
    const session = await this.d.engine.get(id);
    if (!session) return this.sessionEnded(undefined);
    this.lifetimeDeadline = session.lifetimeDeadline;
    await this.d.renewLease(this, session);
    // Never a rejected promise: channels wait on it, and a failure is a message for the user.
    this.target = this.logOnToTarget(step.relayPassword, who).catch((err: unknown) => {
      const message = isSessionGateError(err, 'SG_ERR_SESSION_NOT_FOUND')
        ? 'the session ended before the target logon finished'
        : 'the target logon failed';
      this.d.logger.warn(
        { sessionId: this.sessionId, error: (err as Error).message },
        'ssh target logon failed',
      );
      this.endSoon();
      return message;
    });
  }

  private async logOnToTarget(relayPassword: string | undefined, who: GatewayIdentity) {
    const result = await logOnToTarget({
      host: this.d.host,
      plugin: this.route!.config.credentials?.plugin,
      sessionId: this.sessionId!,
      dest: this.dest!,
      clientIp: this.info.ip,
      who,
      relayPassword,
      verifyHostKey: this.d.verifyHostKey,
      timeoutMs: this.d.config.connect_timeout_ms,
    });
    if (!result.ok) {
      this.audit({ event: 'ssh_target', result: 'failed', message: result.message });
      this.endSoon();
      return result.message;
    }
    this.audit({ event: 'ssh_target', result: 'ok', credential: result.used });
    this.targetClient = result.client;
    result.client.on('close', () => this.end('logout'));
    result.client.on('error', () => undefined);
    if (this.ended) result.client.end();
    return result.client;
  }

  private channelContext() {
    const route = this.route!;
    const dir = this.d.recordingDir(route);
    return {
      sessionId: this.sessionId!,
      target: () => this.target!,
      envAllowed: (name: string) => envAllowed(route, name),
      recording: dir ? { dir, input: route.config.recording?.input ?? false } : undefined,
      clock: this.d.clock,
      logger: this.d.logger,
      nextChannel: () => ++this.recordedChannels,
      counted: (direction: 'to_target' | 'to_client', n: number) => this.counted(direction, n),
      opened: (kind: 'shell' | 'exec' | 'subsystem', detail: string | undefined) => {
        const what =
          kind === 'exec' ? { command: detail } : kind === 'subsystem' ? { subsystem: detail } : {};
        this.audit({ event: 'ssh_channel', channel: kind, ...what });
      },
      track: (ch: ServerChannel) => {
        this.channels.add(ch);
        ch.on('close', () => this.channels.delete(ch));
      },
    };
  }

  private counted(direction: 'to_target' | 'to_client', n: number): void {
    this.bytes[direction] += n;
    this.active = true;
  }

  /**
   * The session ended under the connection (killed, timed out): tell the client on each open
   * channel, then end the connection.
   */
  sessionEnded(reason: CloseReason | undefined, message?: string): void {
    if (this.ended) return;
    // At shutdown the session is still live: it closes when the connection has.
    if (!message) this.sessionClosed = true;
    if (reason) this.closeReason = reason;
    message ??=
      (reason && ENDINGS[reason]) ?? 'the session was ended elsewhere (by an administrator, or by its user)';
    for (const ch of this.channels) {
      ch.stderr.write(`\r\nsessiongate: ${message}\r\n`);
      ch.exit(255);
      ch.end();
    }
    this.end(reason ?? 'admin_kill');
  }

  /** End the connection (once). */
  end(reason: CloseReason): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.sessionClosed) this.closeReason = reason;
    this.targetClient?.end();
    this.disconnectAfterChannels();
  }

  /**
   * OpenSSH's client drops channel output it has not printed yet when the disconnect arrives,
   * so a last message ("the session was ended elsewhere") would be lost: disconnect once the
   * client has closed its channels, or after CHANNEL_CLOSE_GRACE_MS at most.
   */
  private disconnectAfterChannels(): void {
    let done = false;
    const disconnect = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.client.end();
    };
    const timer = setTimeout(disconnect, CHANNEL_CLOSE_GRACE_MS);
    if (this.channels.size === 0) return void setImmediate(disconnect);
    // Registered after track()'s own listener, which has taken the channel out of the set.
    for (const ch of this.channels) ch.once('close', () => this.channels.size === 0 && disconnect());
  }

  /** A refusal's message reaches the client on its first channel; the connection ends soon after. */
  private endSoon(): void {
    setTimeout(() => this.end(this.closeReason), 5000).unref();
  }

  private async closeSession(reason: CloseReason): Promise<void> {
    if (this.sessionClosed || !this.sessionId) return;
    this.sessionClosed = true;
    this.closeReason = reason;
    await this.d.engine.close(this.sessionId, reason).catch(() => undefined);
  }

  private async closed(): Promise<void> {
    this.ended = true;
    clearTimeout(this.graceTimer);
    this.d.forget(this);
    this.targetClient?.end();
    if (!this.sessionId) return;
    await this.closeSession(this.closeReason);
    this.audit({
      event: 'ssh_end',
      reason: this.closeReason,
      bytes_to_target: this.bytes.to_target,
      bytes_to_client: this.bytes.to_client,
    });
  }

  private audit(record: { event: 'ssh_target' | 'ssh_channel' | 'ssh_end'; [field: string]: unknown }): void {
    const dest = this.dest;
    (this.d.audit ?? noAudit).write({
      sessionId: this.sessionId ?? '',
      clientIp: this.info.ip,
      ...(dest ? { target: `${dest.host}:${dest.port}`, target_user: dest.targetUser } : {}),
      ...record,
    });
  }
}
