import assert from 'node:assert/strict';
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { after, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { deadPort, listen, startProxy } from './helpers.js';
import type { TestProxy, TestServer } from './helpers.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

interface WsUpstream extends TestServer {
  wss: WebSocketServer;
  /** The handshake requests the upstream accepted. */
  handshakes: IncomingMessage[];
}

/** An upstream with a WebSocket echo server (and a plain HTTP 200 for other requests). */
async function wsUpstream(o: { verifyClient?: (req: IncomingMessage) => boolean } = {}): Promise<WsUpstream> {
  const server = http.createServer((_req, res) => res.end('plain'));
  const handshakes: IncomingMessage[] = [];
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('chat.v2') ? 'chat.v2' : false),
    ...(o.verifyClient
      ? {
          verifyClient: (info: { req: IncomingMessage }) =>
            (o.verifyClient as (r: IncomingMessage) => boolean)(info.req),
        }
      : {}),
  });
  wss.on('connection', (ws, req) => {
    handshakes.push(req);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const base = await listen(server);
  return {
    ...base,
    wss,
    handshakes,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await base.close();
    },
  };
}

async function pair(
  up: TestServer,
  forward?: Parameters<typeof startProxy>[0]['forward'],
): Promise<TestProxy> {
  const p = await startProxy({ upstream: { url: up.url }, ...(forward ? { forward } : {}) });
  cleanup.push(
    () => p.close(),
    () => up.close(),
  );
  return p;
}

function open(url: string, protocols?: string[], headers?: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) =>
    ws.once('message', (data, isBinary) => resolve({ data: data as Buffer, isBinary })),
  );
}

describe('upgrade: WebSocket pass-through', () => {
  test('echo through upgrade(), text and binary, with the subprotocol negotiated', async () => {
    const up = await wsUpstream();
    const p = await pair(up);
    const ws = await open(`ws://127.0.0.1:${p.port}/socket?room=1`, ['chat.v1', 'chat.v2']);
    assert.equal(ws.protocol, 'chat.v2');
    const r = p.results[0];
    assert.ok(r?.ok && r.status === 101);

    ws.send('hello');
    const m1 = await nextMessage(ws);
    assert.equal(m1.data.toString(), 'hello');
    assert.equal(m1.isBinary, false);

    const big = Buffer.alloc(300_000, 7);
    ws.send(big);
    const m2 = await nextMessage(ws);
    assert.equal(m2.isBinary, true);
    assert.ok(m2.data.equals(big));

    assert.equal(up.handshakes[0]?.url, '/socket?room=1');
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(1000);
    assert.equal(await closed, 1000);
  });

  test('the handshake gets the same header handling: session cookie stripped, X-Forwarded-* set', async () => {
    const up = await wsUpstream();
    const p = await pair(up, { stripCookies: ['sg_session'], clientIp: '203.0.113.9' });
    const ws = await open(`ws://127.0.0.1:${p.port}/`, undefined, {
      cookie: 'sg_session=SECRET; app=1',
      'x-forwarded-for': '198.51.100.1',
      'proxy-authorization': 'Basic eDp5',
    });
    const h = up.handshakes[0]?.headers;
    assert.ok(h);
    assert.equal(h.cookie, 'app=1');
    assert.equal(h['x-forwarded-for'], '198.51.100.1, 203.0.113.9');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['proxy-authorization'], undefined);
    assert.equal(h.upgrade?.toLowerCase(), 'websocket');
    assert.match(h.connection ?? '', /upgrade/i);
    ws.terminate();
  });

  test('an upstream that declines the upgrade: its answer is relayed', async () => {
    const up = await wsUpstream({ verifyClient: () => false });
    const p = await pair(up);
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${p.port}/`);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      ws.on('error', reject);
    });
    assert.equal(status, 401);
    const r = await (p.results[0] ? Promise.resolve(p.results[0]) : p.nextResult());
    assert.ok(r.ok && r.status === 401);
  });

  test('upstream down: 502 result, nothing written by upgrade(); the gateway answers', async () => {
    const port = await deadPort();
    const p = await startProxy({ upstream: { url: `http://127.0.0.1:${port}` } });
    cleanup.push(() => p.close());
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${p.port}/`);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
      });
      ws.on('open', () => reject(new Error('opened')));
      ws.on('error', () => {});
    });
    assert.equal(status, 502);
    const r = p.results[0];
    assert.ok(r && !r.ok && r.reason === 'connect_failed');
  });

  test('bytes the client sent right after the handshake reach the upstream', async () => {
    const up = await wsUpstream();
    const p = await pair(up);
    // A raw client that sends the handshake and a masked text frame ("hi") in one write.
    const frame = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'h'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]);
    const handshake =
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${p.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = connect(p.port, '127.0.0.1', () => s.write(Buffer.concat([Buffer.from(handshake), frame])));
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        const end = buf.indexOf('\r\n\r\n');
        // 101 head, then the echoed (unmasked) frame: 0x81 0x02 'h' 'i'
        if (end !== -1 && buf.length >= end + 4 + 4) {
          resolve(buf);
          s.destroy();
        }
      });
      s.on('error', reject);
    });
    const text = got.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 101 /);
    assert.match(text, /\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
    assert.deepEqual([...got.subarray(got.indexOf('\r\n\r\n') + 4)], [0x81, 0x02, 0x68, 0x69]);
  });

  test('when the upstream closes the connection the client sees it close', async () => {
    const up = await wsUpstream();
    const p = await pair(up);
    const ws = await open(`ws://127.0.0.1:${p.port}/`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    for (const c of up.wss.clients) c.close(4001, 'bye');
    assert.equal(await closed, 4001);
  });

  test('Upstream.close() tears the tunnels down', async () => {
    const up = await wsUpstream();
    const p = await pair(up);
    const ws = await open(`ws://127.0.0.1:${p.port}/`);
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    assert.equal(p.upstream.tunnels.size, 2);
    await p.upstream.close();
    await closed;
    assert.equal(p.upstream.tunnels.size, 0);
  });
});
