import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import type { Duplex } from 'node:stream';
import type { GatewayConfig } from './config/schema.js';
import type { Gateway } from './gateway.js';

/** The gateway's HTTP(S) server, and the upgraded sockets it no longer tracks itself. */
export interface Listener {
  server: Server;
  /** WebSocket tunnels: outside the server's bookkeeping, destroyed at the end of a stop. */
  tunnels: Set<Duplex>;
  tls: boolean;
}

/**
 * The server of the listen section (TLS files read here), wired to the gateway.
 *
 * @example
 * ```ts
 * const listener = createListener(config, baseDir, gateway);
 * const port = await listen(listener.server, 8080, '127.0.0.1');
 * ```
 */
export function createListener(config: GatewayConfig, baseDir: string, gateway: Gateway): Listener {
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
  return { server, tunnels, tls: tls !== undefined };
}

/** Listen; resolves with the port, rejects with the listen error (the port is taken, ...). */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise<number>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ok((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Stop accepting, close idle connections at once and the rest after `graceMs` (tunnels
 * included); resolves when the server has closed.
 */
export async function stopListener({ server, tunnels }: Listener, graceMs: number): Promise<void> {
  const stopped = new Promise<void>((r) => server.close(() => r()));
  server.closeIdleConnections();
  const timer = setTimeout(() => {
    server.closeAllConnections();
    for (const socket of tunnels) socket.destroy();
  }, graceMs);
  await stopped;
  clearTimeout(timer);
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
