import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { Upstream } from '../../src/gateway/proxy/upstream.js';
import { Browser, basic, startTestGateway, type GatewayFixture, LOGON_CONFIG } from './harness.js';

// WebSockets through the whole gateway: the upgrade of an allowed session reaches the
// upstream (without the gateway cookie); anything else is refused with 401 at the gateway.

const HAS_UPGRADE = typeof (Upstream.prototype as { upgrade?: unknown }).upgrade === 'function';
const skip = HAS_UPGRADE ? false : 'the proxy layer has no Upstream.upgrade yet';

const CONFIG = LOGON_CONFIG;

let fx: GatewayFixture;
let wss: WebSocketServer;
const handshakes: IncomingMessage[] = [];
const server = createServer((_req, res) => res.end('plain'));

before(async () => {
  wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    handshakes.push(req);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  fx = await startTestGateway(CONFIG, { UPSTREAM: `http://127.0.0.1:${port}` });
});
after(async () => {
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
  await new Promise<void>((r) => server.close(() => r()));
  await fx.close();
});

const wsUrl = (path: string): string => fx.gw.url.replace(/^http/, 'ws') + path;

/** Open a WebSocket; resolves with the socket, or with the HTTP status that refused it. */
function open(path: string, headers: Record<string, string> = {}): Promise<WebSocket | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(path), { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

async function allowedCookie(): Promise<string> {
  const api = new Browser(fx.gw.url, 'application/json');
  const res = await api.fetch('/', { headers: { authorization: basic('alice', 'wonderland') } });
  assert.equal(res.status, 200);
  return `MRHSession=${api.jar.get('MRHSession')}`;
}

describe('WebSocket pass-through', { skip }, () => {
  it('an allowed session talks to the upstream; the gateway cookie stays behind', async () => {
    const ws = await open('/chat?room=1', { cookie: `${await allowedCookie()}; app=1` });
    assert.ok(ws instanceof WebSocket);
    const echoed = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    ws.send('hello through the gateway');
    assert.equal(await echoed, 'hello through the gateway');
    const seen = handshakes.at(-1)!;
    assert.equal(seen.url, '/chat?room=1');
    assert.equal(seen.headers.cookie, 'app=1');
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.close(1000);
    assert.equal(await closed, 1000);
  });

  it('is refused with 401 without a session, with an unknown token, and before the logon is done', async () => {
    const count = handshakes.length;
    assert.equal(await open('/chat'), 401);
    assert.equal(await open('/chat', { cookie: `MRHSession=${'A'.repeat(43)}` }), 401);
    const pending = new Browser(fx.gw.url, 'application/json');
    assert.equal((await pending.fetch('/')).status, 401, 'a session in progress, not logged on');
    assert.equal(await open('/chat', { cookie: `MRHSession=${pending.jar.get('MRHSession')}` }), 401);
    assert.equal(handshakes.length, count, 'nothing reached the upstream');
  });

  it('a graceful stop ends open sockets once the grace period is over', { timeout: 10_000 }, async () => {
    const { port } = server.address() as AddressInfo;
    const other = await startTestGateway(CONFIG, { UPSTREAM: `http://127.0.0.1:${port}` });
    const api = new Browser(other.gw.url, 'application/json');
    await api.fetch('/', { headers: { authorization: basic('alice', 'wonderland') } });
    const ws = new WebSocket(other.gw.url.replace(/^http/, 'ws') + '/chat', {
      headers: { cookie: `MRHSession=${api.jar.get('MRHSession')}` },
    });
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<void>((r) => ws.once('close', () => r()));
    const started = Date.now();
    await other.gw.close(200);
    await closed;
    assert.ok(Date.now() - started < 3000, `stopped in ${Date.now() - started} ms`);
    await other.close();
  });

  it('a session closed by logout cannot open new sockets', async () => {
    const cookie = await allowedCookie();
    const out = await fetch(`${fx.gw.url}/sg/logout`, {
      method: 'POST',
      headers: { cookie, origin: fx.gw.url, accept: 'application/json' },
    });
    assert.equal(out.status, 204);
    assert.equal(await open('/chat', { cookie }), 401);
  });
});
