import type { Client, ClientChannel, Connection, ServerChannel, TcpConnectionDetails } from 'ssh2';
import type { Logger } from '../core/logger.js';

export interface ForwardingContext {
  /** What the route allows (read when a request comes: the route is known after logon). */
  forwarding(): { local: boolean; remote: boolean };
  target(): Promise<Client | string>;
  counted(direction: 'to_target' | 'to_client', bytes: number): void;
  logger: Logger;
}

/**
 * Port forwarding through the gateway, each kind only when the route allows it: `ssh -L`
 * (direct-tcpip: the target opens the connection) and `ssh -R` (the target listens; its
 * connections come back to the client). Everything else (Unix sockets, X11, the agent) is
 * refused.
 *
 * @example
 * ```ts
 * bridgeForwarding(client, { forwarding: () => route.config.forwarding, target, counted, logger });
 * ```
 */
export function bridgeForwarding(client: Connection, ctx: ForwardingContext): void {
  client.on('tcpip', (accept, reject, info) => {
    if (!ctx.forwarding().local) return reject();
    void ctx.target().then((target) => {
      if (typeof target === 'string') return reject();
      target.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, remote) => {
        if (err) return reject();
        join(accept(), remote, ctx);
      });
    });
  });
  let listening: Client | undefined;
  client.on('request', (accept, reject, name, info) => {
    if (name !== 'tcpip-forward' && name !== 'cancel-tcpip-forward') return reject?.();
    if (!ctx.forwarding().remote) return reject?.();
    void ctx.target().then((target) => {
      if (typeof target === 'string') return reject?.();
      if (name === 'cancel-tcpip-forward') {
        target.unforwardIn(info.bindAddr, info.bindPort, (err) => (err ? reject?.() : accept?.()));
        return;
      }
      if (listening !== target) {
        listening = target;
        target.on('tcp connection', (details, acceptIn, rejectIn) =>
          back(client, details, acceptIn, rejectIn, ctx),
        );
      }
      target.forwardIn(info.bindAddr, info.bindPort, (err, port) => (err ? reject?.() : accept?.(port)));
    });
  });
  client.on('openssh.streamlocal', (_accept, reject) => reject());
}

/** A connection to a port the target listens on for the client: carried back to the client. */
function back(
  client: Connection,
  d: TcpConnectionDetails,
  accept: () => ClientChannel,
  reject: () => void,
  ctx: ForwardingContext,
): void {
  client.forwardOut(d.destIP, d.destPort, d.srcIP, d.srcPort, (err, toClient) => {
    if (err) return reject();
    join(toClient, accept(), ctx);
  });
}

function join(clientSide: ServerChannel, targetSide: ClientChannel, ctx: ForwardingContext): void {
  clientSide.on('data', (d: Buffer) => ctx.counted('to_target', d.length));
  targetSide.on('data', (d: Buffer) => ctx.counted('to_client', d.length));
  clientSide.pipe(targetSide).pipe(clientSide);
  clientSide.on('error', () => targetSide.destroy());
  targetSide.on('error', () => clientSide.destroy());
  clientSide.on('close', () => targetSide.destroy());
  targetSide.on('close', () => clientSide.destroy());
}
