import { connect, type Socket } from 'node:net';

/** One answer read off a kept-alive connection, or how the connection ended instead. */
export type ConnectionRead =
  | { kind: 'response'; status: number; headers: Map<string, string>; body: Buffer }
  | { kind: 'closed' }
  | { kind: 'timeout' };

/**
 * A raw TCP connection to the gateway that sends bytes as given and reads the answers one at a
 * time (Content-Length or chunked framing, or until the close), so a test can see whether a
 * connection's next request is answered, the connection closed, or neither within a bound.
 *
 * @example
 * const c = await RawConnection.open(port);
 * c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
 * const r = await c.read(2000); // { kind: 'response', status: 302, ... }
 */
export class RawConnection {
  private buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake?.();
    });
    const end = (): void => {
      this.ended = true;
      this.wake?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }

  /** Write bytes; resolves when written (false if the connection is gone). */
  write(data: string | Buffer): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.socket.destroyed || !this.socket.writable) return resolve(false);
      this.socket.write(data, (err) => resolve(!err));
    });
  }

  /**
   * The next answer, or 'closed' when the connection ends first, or 'timeout' after `ms`.
   * `head`: the answer to a HEAD request (a length but no body).
   */
  async read(ms: number, head = false): Promise<ConnectionRead> {
    const deadline = Date.now() + ms;
    for (;;) {
      const parsed = this.take(head);
      if (parsed) return parsed;
      if (this.ended) return { kind: 'closed' };
      const left = deadline - Date.now();
      if (left <= 0) return { kind: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private take(head: boolean): ConnectionRead | undefined {
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return undefined;
    const [statusLine = '', ...lines] = this.buffer.subarray(0, end).toString('latin1').split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const status = Number(statusLine.split(' ')[1]);
    const rest = this.buffer.subarray(end + 4);
    const framed = head ? { body: Buffer.alloc(0), used: 0 } : frame(rest, headers, this.ended, status);
    if (!framed) return undefined;
    this.buffer = rest.subarray(framed.used);
    return { kind: 'response', status, headers, body: framed.body };
  }
}

function frame(
  rest: Buffer,
  headers: Map<string, string>,
  ended: boolean,
  status: number,
): { body: Buffer; used: number } | undefined {
  if (status === 204 || status === 304 || status < 200) return { body: Buffer.alloc(0), used: 0 };
  const length = headers.get('content-length');
  if (length !== undefined) {
    const n = Number(length);
    if (rest.length < n) return ended ? { body: rest, used: rest.length } : undefined;
    return { body: rest.subarray(0, n), used: n };
  }
  if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
    const body: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = rest.indexOf('\r\n', at);
      if (eol < 0) return undefined;
      const size = parseInt(rest.subarray(at, eol).toString('latin1'), 16);
      if (rest.length < eol + 2 + size + 2) return undefined;
      if (size === 0) return { body: Buffer.concat(body), used: eol + 4 };
      body.push(rest.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  return ended ? { body: rest, used: rest.length } : undefined;
}
