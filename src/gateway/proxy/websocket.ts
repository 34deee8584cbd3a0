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

export function proxyUpgrade(
  upstream: UpgradeTarget,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  o: ForwardOptions,
): Promise<ForwardResult> {
  return new Promise<ForwardResult>((resolve) => {
    let controller: Dispatcher.DispatchController | undefined;
    let started = false;
    let done = false;
    let clientGone = false;
    let status = 0;

    const finish = (r: ForwardResult): void => {
      if (done) return;
      done = true;
      socket.off('close', onClientClose);
      resolve(r);
    };
    const onClientClose = (): void => {
      if (done) return;
      clientGone = true;
      controller?.abort(new ClientAbortedError());
    };
    const onDrain = (): void => controller?.resume();
    // A socket handed over by the server's 'upgrade' event has no error listener of its own: an
    // error without one would crash the process. Errors end in 'close', handled below.
    const ignore = (): void => {};
    socket.on('error', ignore);

    if (socket.destroyed) {
      finish(classifyError(new ClientAbortedError(), false));
      return;
    }
    socket.on('close', onClientClose);

    let headers: string[];
    try {
      headers = upstream.headersFor(req, o);
    } catch (err) {
      finish(classifyError(new BadResponseError('cannot build request headers', { cause: err }), false));
      return;
    }

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (clientGone) c.abort(new ClientAbortedError());
      },
      onRequestUpgrade(_c, statusCode, rawHeaders, upSocket) {
        const h = rawHeaders as Record<string, string | string[]>;
        const upgradeTo = h['upgrade'];
        let text: string;
        try {
          stripResponseHeaders(h);
          o.onResponse?.(statusCode, h);
          text = responseHead(statusCode, STATUS_CODES[statusCode] ?? 'Switching Protocols', {
            connection: 'Upgrade',
            upgrade: upgradeTo,
            ...h,
          });
        } catch (err) {
          upSocket.destroy();
          finish(
            classifyError(
              new BadResponseError(`cannot pass on the upgrade: ${(err as Error).message}`),
              true,
            ),
          );
          return;
        }
        if (clientGone || socket.destroyed) {
          upSocket.destroy();
          finish(classifyError(new ClientAbortedError(), true));
          return;
        }
        setNoDelay(socket);
        setNoDelay(upSocket);
        socket.write(text);
        if (head.length > 0) upSocket.write(head);
        const tunnels = upstream.tunnels;
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
        socket.off('error', ignore);
        socket.on('error', teardown);
        upSocket.pipe(socket);
        socket.pipe(upSocket);
        finish({ ok: true, status: statusCode });
      },
      onResponseStart(c, statusCode, rawHeaders, statusMessage) {
        // The upstream declined the upgrade: relay its answer, body delimited by closing.
        if (statusCode < 200) return;
        const h = rawHeaders as Record<string, string | string[]>;
        let text: string;
        try {
          stripResponseHeaders(h);
          o.onResponse?.(statusCode, h);
          text = responseHead(statusCode, statusMessage || STATUS_CODES[statusCode] || '', {
            ...h,
            connection: 'close',
          });
        } catch (err) {
          c.abort(
            new BadResponseError(`cannot pass on the response: ${(err as Error).message}`, { cause: err }),
          );
          return;
        }
        socket.write(text);
        status = statusCode;
        started = true;
      },
      onResponseData(c, chunk) {
        if (!socket.write(chunk)) {
          c.pause();
          socket.once('drain', onDrain);
        }
      },
      onResponseEnd() {
        socket.off('drain', onDrain);
        socket.end();
        finish({ ok: true, status });
      },
      onResponseError(_c, err) {
        socket.off('drain', onDrain);
        const gone = clientGone || err instanceof ClientAbortedError;
        const r = gone
          ? classifyError(new ClientAbortedError(), true)
          : classifyError(err, controller !== undefined);
        if (started || gone) socket.destroy();
        finish(r);
      },
    };

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
      finish(classifyError(err, false));
    }
  });
}
