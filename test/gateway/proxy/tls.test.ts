import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { request, startProxy } from './helpers.js';
import type { TestProxy } from './helpers.js';

const fixture = (name: string): Buffer => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const cert = fixture('upstream-cert.pem');
const key = fixture('upstream-key.pem');

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function httpsUpstream(): Promise<string> {
  const server = https.createServer({ cert, key }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(async () => {
    for (const c of wss.clients) c.terminate();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function proxy(o: Parameters<typeof startProxy>[0]): Promise<TestProxy> {
  const p = await startProxy(o);
  cleanup.push(() => p.close());
  return p;
}

describe('https upstream', () => {
  test('the certificate is verified: unknown CA → 502 connect_failed', async () => {
    const p = await proxy({ upstream: { url: await httpsUpstream() } });
    const r = await request(p.url);
    assert.equal(r.status, 502);
    assert.equal(r.body.toString(), 'gateway connect_failed');
    const res = p.results[0];
    assert.ok(res && !res.ok && /self[- ]signed|certificate/i.test(res.message), JSON.stringify(res));
  });

  test('with the CA given, requests and WebSockets pass', async () => {
    const p = await proxy({ upstream: { url: await httpsUpstream(), tls: { ca: cert } } });
    const r = await request(p.url, { path: '/secure?x=1' });
    assert.equal(r.status, 200);
    const e = JSON.parse(r.body.toString()) as { url: string; headers: Record<string, string> };
    assert.equal(e.url, '/secure?x=1');
    assert.equal(e.headers['x-forwarded-proto'], 'http');

    const ws = new WebSocket(`ws://127.0.0.1:${p.port}/ws`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
    ws.send('over tls');
    assert.equal(await echoed, 'over tls');
    ws.terminate();
  });
});
