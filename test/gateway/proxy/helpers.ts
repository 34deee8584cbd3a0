// Real servers on free loopback ports for the proxy tests: an upstream (node:http), and a
// minimal "gateway" that sends every request through an Upstream the way the gateway server does.
import http from 'node:http';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Upstream } from '../../../src/gateway/proxy/index.js';
import type { ForwardOptions, ForwardResult, UpstreamOptions } from '../../../src/gateway/proxy/index.js';

export interface TestServer {
  server: http.Server;
  port: number;
  url: string;
  /** Every TCP connection the server accepted. */
  sockets: Socket[];
  close(): Promise<void>;
}

export async function listen(server: http.Server): Promise<TestServer> {
  const sockets: Socket[] = [];
  server.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export function startUpstream(handler: RequestListener): Promise<TestServer> {
  return listen(http.createServer(handler));
}

export interface TestProxy extends TestServer {
  upstream: Upstream;
  results: ForwardResult[];
  /** Resolves with the next result forward()/upgrade() returns. */
  nextResult(): Promise<ForwardResult>;
  /** What `res.headersSent` was when forward() resolved, per request. */
  headersSentAtResult: boolean[];
}

export interface ProxyOptions {
  upstream: Omit<UpstreamOptions, 'url'> & { url: string };
  /** Options for every forward()/upgrade() call; a function to derive them from the request. */
  forward?: Partial<ForwardOptions> | ((req: IncomingMessage) => Partial<ForwardOptions>);
}

/** A bare gateway: forward() every request; on a failure with nothing sent yet, answer
 * `<status> gateway <reason>` like the gateway's error page would. */
export async function startProxy(o: ProxyOptions): Promise<TestProxy> {
  const upstream = new Upstream(o.upstream);
  const results: ForwardResult[] = [];
  const headersSentAtResult: boolean[] = [];
  const waiters: ((r: ForwardResult) => void)[] = [];
  const record = (r: ForwardResult): void => {
    results.push(r);
    const w = waiters.shift();
    if (w) w(r);
  };
  const optsFor = (req: IncomingMessage): ForwardOptions => ({
    clientIp: req.socket.remoteAddress ?? '',
    proto: 'http',
    host: req.headers.host ?? '',
    ...(typeof o.forward === 'function' ? o.forward(req) : o.forward),
  });
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    void upstream.forward(req, res, optsFor(req)).then((r) => {
      headersSentAtResult.push(res.headersSent);
      if (!r.ok && !res.headersSent && !res.destroyed) {
        res.writeHead(r.status, { 'content-type': 'text/plain' });
        res.end(`gateway ${r.reason}`);
      }
      record(r);
    });
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    void upstream.upgrade(req, socket, head, optsFor(req)).then((r) => {
      if (!r.ok && !socket.destroyed) {
        const body = `gateway ${r.reason}`;
        socket.end(
          `HTTP/1.1 ${r.status} Error\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
        );
      }
      record(r);
    });
  });
  const base = await listen(server);
  return {
    ...base,
    upstream,
    results,
    headersSentAtResult,
    nextResult: () => new Promise<ForwardResult>((resolve) => waiters.push(resolve)),
    close: async () => {
      await base.close();
      await upstream.close();
    },
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  trailers: NodeJS.Dict<string>;
  body: Buffer;
}

/** One request with node:http (its own connection unless `agent` is given). */
export function request(
  url: string,
  o: {
    method?: string;
    path?: string;
    headers?: http.OutgoingHttpHeaders | string[];
    body?: Buffer | string;
    agent?: http.Agent;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(o.path ?? '/', url);
    let headers = o.headers;
    // node:http adds Host itself only to header objects.
    if (Array.isArray(headers) && !rawValues(headers, 'host').length) headers = [...headers, 'Host', u.host];
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: o.method ?? 'GET',
        headers,
        agent: o.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            rawHeaders: res.rawHeaders,
            trailers: res.trailers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Collects a request's body. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A port nothing listens on (a server is opened there, then closed). */
export async function deadPort(): Promise<number> {
  const s = await listen(http.createServer());
  await s.close();
  return s.port;
}

/** Values of one header in a raw header list (names compared case-insensitively). */
export function rawValues(rawHeaders: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]?.toLowerCase() === name) out.push(rawHeaders[i + 1] ?? '');
  return out;
}
