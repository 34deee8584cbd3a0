import { connect } from 'node:net';

/** An HTTP/1.x response as read off the wire. */
export interface RawResponse {
  status: number;
  headers: Map<string, string[]>;
  body: string;
  /** The connection was closed by the server after this response. */
  closed: boolean;
}

/**
 * Send bytes exactly as given over a fresh TCP connection (no client library in between, so
 * absolute-form targets, duplicate headers and odd framing reach the server as written) and
 * read the first response. The server must close the connection or send Content-Length.
 *
 * @example
 * const r = await rawRequest(port, 'GET http://127.0.0.1/admin HTTP/1.1\r\nHost: x\r\n\r\n');
 * assert.equal(r.status, 403);
 */
export function rawRequest(port: number, text: string, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms: ${data.toString('latin1')}`));
    }, timeoutMs);
    const finish = (closed: boolean): boolean => {
      const parsed = parse(data, closed);
      if (!parsed) return false;
      clearTimeout(timer);
      socket.destroy();
      resolve(parsed);
      return true;
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      finish(false);
    });
    socket.on('end', () => {
      if (!finish(true)) {
        clearTimeout(timer);
        reject(new Error(`connection closed before a whole answer: ${data.toString('latin1')}`));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.write(text, 'latin1');
  });
}

function parse(data: Buffer, closed: boolean): RawResponse | undefined {
  const text = data.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  const body = text.slice(end + 4);
  const length = headers.get('content-length')?.[0];
  // (A HEAD answer names a length but has no body: the close ends it.)
  if (length !== undefined && !closed && Buffer.byteLength(body, 'latin1') < Number(length)) return undefined;
  if (length === undefined && !closed) return undefined;
  const connection = headers.get('connection')?.[0]?.toLowerCase();
  return {
    status: Number(statusLine.split(' ')[1]),
    headers,
    body: length === undefined ? body : body.slice(0, Number(length)),
    closed: closed || connection === 'close',
  };
}
