// Upgrade (WebSocket) pass-through: the handshake goes to the upstream through the same pool and
// header hygiene as forward(); on 101 the upstream connection is detached from the pool and the
// two sockets are piped together.
//
// The client side is a raw socket (the server's 'upgrade' event), so responses are written as
// HTTP/1.1 text here. Failures before anything was written are returned, not written: the
// gateway answers on the socket (a minimal HTTP response) and destroys it.

import { STATUS_CODES, validateHeaderName, validateHeaderValue } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { stripResponseHeaders } from './headers.js';
import { BadResponseError, ClientAbortedError, classifyError } from './errors.js';
import type { ForwardResult } from './errors.js';
import type { ForwardOptions } from './forward-options.js';

/** What an upgrade needs from its upstream (Upstream provides it). */
export interface UpgradeTarget {
  readonly pool: Dispatcher;
  /** Tunnelled connection pairs, so that closing the upstream can destroy them. */
  readonly tunnels: Set<Duplex>;
  headersFor(req: IncomingMessage, o: ForwardOptions): string[];
  upstreamPath(req: IncomingMessage, o: ForwardOptions): string;
}

/** The status line and headers of a response written on a raw socket. Throws on an invalid
 * header name or value (never writes CR/LF from a header into the stream). */
export function responseHead(
  status: number,
  statusMessage: string,
  headers: Record<string, string | string[] | undefined>,
): string {
  const message = statusMessage.replace(/[^\t\x20-\x7e\x80-\xff]/g, '');
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    validateHeaderName(name);
    for (const v of Array.isArray(value) ? value : [value]) {
      validateHeaderValue(name, v);
      head += `${name}: ${v}\r\n`;
    }
  }
  return `${head}\r\n`;
}

function setNoDelay(s: Duplex): void {
  const sock = s as Partial<Socket>;
  if (typeof sock.setNoDelay === 'function') sock.setNoDelay(true);
}

/**
 * Passes an Upgrade request to the upstream (see Upstream.upgrade): resolves with the outcome,
 * never rejects.
 */
export function proxyUpgrade(
  upstream: UpgradeTarget,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  o: ForwardOptions,
): Promise<ForwardResult> {
  return new Promise<ForwardResult>((resolve) => {
    const handler = new UpgradeHandler(upstream, socket, head, o, resolve);
    if (socket.destroyed) {
      handler.finish(classifyError(new ClientAbortedError(), false));
      return;
    }
    socket.on('close', handler.onClientClose);
    let headers: string[];
    try {
      headers = upstream.headersFor(req, o);
    } catch (err) {
      handler.finish(
        classifyError(new BadResponseError('cannot build request headers', { cause: err }), false),
      );
      return;
    }
    try {
      upstream.pool.dispatch(
        {
          path: upstream.upstreamPath(req, o),
          method: req.method ?? 'GET',
          headers,
          body: null,
          upgrade: req.headers.upgrade ?? 'websocket',
        },
        handler,
      );
    } catch (err) {
      handler.finish(classifyError(err, false));
    }
  });
}

/**
 * One upgrade: undici's dispatch handler writing on the client's raw socket. On 101 it writes
 * the switching answer and pipes the two connections together; any other answer is relayed
 * with its body delimited by closing.
 */
class UpgradeHandler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private started = false;
  private done = false;
  private clientGone = false;
  private status = 0;

  constructor(
    private readonly upstream: UpgradeTarget,
    private readonly socket: Duplex,
    private readonly head: Buffer,
    private readonly o: ForwardOptions,
    private readonly resolve: (r: ForwardResult) => void,
  ) {
    // A socket handed over by the server's 'upgrade' event has no error listener of its own: an
    // error without one would crash the process. Errors end in 'close', handled there.
    socket.on('error', this.ignore);
  }

  private readonly ignore = (): void => {};

  readonly onClientClose = (): void => {
    if (this.done) return;
    this.clientGone = true;
    this.controller?.abort(new ClientAbortedError());
  };

  private readonly onDrain = (): void => this.controller?.resume();

  finish(r: ForwardResult): void {
    if (this.done) return;
    this.done = true;
    this.socket.off('close', this.onClientClose);
    this.resolve(r);
  }

  onRequestStart(c: Dispatcher.DispatchController): void {
    this.controller = c;
    if (this.clientGone) c.abort(new ClientAbortedError());
  }

  onRequestUpgrade(
    _c: Dispatcher.DispatchController,
    statusCode: number,
    rawHeaders: Record<string, string | string[] | undefined>,
    upSocket: Duplex,
  ): void {
    const h = rawHeaders as Record<string, string | string[]>;
    const upgradeTo = h['upgrade'];
    let text: string;
    try {
      stripResponseHeaders(h);
      this.o.onResponse?.(statusCode, h);
      text = responseHead(statusCode, STATUS_CODES[statusCode] ?? 'Switching Protocols', {
        connection: 'Upgrade',
        upgrade: upgradeTo,
        ...h,
      });
    } catch (err) {
      upSocket.destroy();
      const message = `cannot pass on the upgrade: ${(err as Error).message}`;
      this.finish(classifyError(new BadResponseError(message), true));
      return;
    }
    if (this.clientGone || this.socket.destroyed) {
      upSocket.destroy();
      this.finish(classifyError(new ClientAbortedError(), true));
      return;
    }
    this.tunnel(text, upSocket);
    this.finish({ ok: true, status: statusCode });
  }

  /** Writes the switching answer and pipes the two connections together until either closes. */
  private tunnel(text: string, upSocket: Duplex): void {
    const socket = this.socket;
    setNoDelay(socket);
    setNoDelay(upSocket);
    socket.write(text);
    if (this.head.length > 0) upSocket.write(this.head);
    const tunnels = this.upstream.tunnels;
    tunnels.add(socket);
    tunnels.add(upSocket);
    const teardown = (): void => {
      tunnels.delete(socket);
      tunnels.delete(upSocket);
      socket.destroy();
      upSocket.destroy();
    };
    upSocket.on('error', teardown);
    upSocket.on('close', teardown);
    socket.on('close', teardown);
    socket.off('error', this.ignore);
    socket.on('error', teardown);
    upSocket.pipe(socket);
    socket.pipe(upSocket);
  }

  onResponseStart(
    c: Dispatcher.DispatchController,
    statusCode: number,
    rawHeaders: Record<string, string | string[] | undefined>,
    statusMessage?: string,
  ): void {
    // The upstream declined the upgrade: relay its answer, body delimited by closing.
    if (statusCode < 200) return;
    const h = rawHeaders as Record<string, string | string[]>;
    let text: string;
    try {
      stripResponseHeaders(h);
      this.o.onResponse?.(statusCode, h);
      text = responseHead(statusCode, statusMessage || STATUS_CODES[statusCode] || '', {
        ...h,
        connection: 'close',
      });
    } catch (err) {
      c.abort(new BadResponseError(`cannot pass on the response: ${(err as Error).message}`, { cause: err }));
      return;
    }
    this.socket.write(text);
    this.status = statusCode;
    this.started = true;
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.socket.write(chunk)) {
      c.pause();
      this.socket.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    this.socket.off('drain', this.onDrain);
    this.socket.end();
    this.finish({ ok: true, status: this.status });
  }

  onResponseError(_c: Dispatcher.DispatchController, err: Error): void {
    this.socket.off('drain', this.onDrain);
    const gone = this.clientGone || err instanceof ClientAbortedError;
    const r = gone
      ? classifyError(new ClientAbortedError(), true)
      : classifyError(err, this.controller !== undefined);
    if (this.started || gone) this.socket.destroy();
    this.finish(r);
  }
}
