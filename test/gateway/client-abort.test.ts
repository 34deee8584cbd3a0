import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AdminMetrics } from '../../src/admin/metrics.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { recordingLogger, until } from '../plugins/helpers.js';
import { basic, Browser, testUpstream, LOGON_CONFIG } from './harness.js';
import { RawConnection } from './raw-connection.js';

// A client that goes away in the middle of its request body is routine: no error line in the
// log (debug at most), and it is counted in sessiongate_client_aborted_total.

const CONFIG = LOGON_CONFIG;

let gw: RunningGateway;
let dir: string;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
const logs = recordingLogger();
const metrics = new AdminMetrics();
let port: number;

before(async () => {
  upstream = await testUpstream();
  dir = mkdtempSync(join(tmpdir(), 'sg-abort-'));
  const hash = await hashPassword('wonderland', { N: 1024, r: 8, p: 1 });
  writeFileSync(join(dir, 'users.yaml'), `users:\n  alice:\n    password: ${hash}\n`);
  const text = CONFIG.replaceAll('${DIR}', dir).replaceAll('${UPSTREAM}', upstream.url);
  gw = await startGateway(parseConfig(text, 'test.yaml', dir), {
    logger: logs,
    port: 0,
    failureDelayMs: () => 0,
    observeRequest: metrics.observeRequest,
  });
  metrics.attach(gw.store);
  port = Number(new URL(gw.url).port);
});
after(async () => {
  await gw.close(1000);
  rmSync(dir, { recursive: true, force: true });
  await upstream.close();
});

async function abortedCount(): Promise<number> {
  const line = (await metrics.text())
    .split('\n')
    .filter((l) => l.startsWith('sessiongate_client_aborted_total'));
  return line.reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

/** Send the head and part of a body, wait for the gateway to be reading it, then go away. */
async function abortMidBody(path: string, cookie: string): Promise<void> {
  const c = await RawConnection.open(port);
  await c.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\n` +
      `Cookie: ${cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nusername=al`,
  );
  // The upstream (or the form reader) has the request once it was seen: then reset.
  await new Promise((r) => setImmediate(r));
  c.socket.resetAndDestroy();
}

describe('a client that goes away mid-body', () => {
  it('on the logon form: counted, not logged as an error', async () => {
    const b = new Browser(gw.url);
    await (await b.fetch('/app')).arrayBuffer();
    const before = await abortedCount();
    await abortMidBody('/sg/logon', `MRHSession=${b.jar.get('MRHSession')}`);
    await waitFor(async () => (await abortedCount()) > before);
    assert.deepEqual(errors(), []);
  });

  it('on a proxied request: counted, not logged as an error', async () => {
    const res = await fetch(`${gw.url}/app`, { headers: { authorization: basic('alice', 'wonderland') } });
    await res.arrayBuffer();
    const cookie = res.headers
      .getSetCookie()
      .findLast((c) => c.startsWith('MRHSession='))!
      .split(';')[0]!;
    const before = await abortedCount();
    const seen = upstream.seen.length;
    await abortMidBody('/app/upload', cookie);
    await until(() => upstream.seen.length > seen);
    await waitFor(async () => (await abortedCount()) > before);
    assert.deepEqual(errors(), []);
  });
});

function errors(): string[] {
  return logs.lines.filter((l) => l.level === 'error').map((l) => `${l.message} ${JSON.stringify(l.fields)}`);
}

/** Wait (bounded) for an asynchronous condition. */
async function waitFor(check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not met within ${ms} ms; errors: ${errors().join(' | ')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
