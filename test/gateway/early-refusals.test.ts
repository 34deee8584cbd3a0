import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Browser, startTestGateway, testUpstream, type GatewayFixture, LOGON_CONFIG } from './harness.js';
import { RawConnection } from './raw-connection.js';

// A request refused before its body was read (a logon form over 16 KiB, a cross-site form, a
// logout, a gateway page that takes no body) must not leave the connection's next request
// hanging: either the rest of the body is drained and the next request answered, or the
// answer says `Connection: close` and the connection closes.

const CONFIG = LOGON_CONFIG;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let port: number;
let host: string;

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  port = Number(new URL(fx.gw.url).port);
  host = `127.0.0.1:${port}`;
});
after(async () => {
  await fx.close();
  await upstream.close();
});

/** A cookie of an in-progress session (the logon form is being asked). */
async function inProgressCookie(): Promise<string> {
  const b = new Browser(fx.gw.url);
  await (await b.fetch('/app')).arrayBuffer();
  return `MRHSession=${b.jar.get('MRHSession')}`;
}

const BOUND_MS = 3000;

/**
 * Send `head` with a body of `size` bytes, then a second request on the same connection.
 * Returns what the first answer was and how the second request ended.
 */
async function refusedThenNext(head: string, size: number): Promise<{ first: string; next: string }> {
  const c = await RawConnection.open(port);
  try {
    await c.write(`${head}Content-Length: ${size}\r\n\r\n`);
    // Write the body in pieces without waiting: the server may answer (and close) part way.
    const piece = Buffer.alloc(16_384, 'a');
    for (let sent = 0; sent < size; sent += piece.length)
      if (!(await c.write(piece.subarray(0, Math.min(piece.length, size - sent))))) break;
    const first = await c.read(BOUND_MS);
    if (first.kind !== 'response') return { first: first.kind, next: 'not sent' };
    const connection = first.headers.get('connection') ?? 'keep-alive';
    await c.write(`GET /sg/static/sg.css HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    const next = await c.read(BOUND_MS);
    return {
      first: `${first.status} ${connection}`,
      next: next.kind === 'response' ? String(next.status) : next.kind,
    };
  } finally {
    c.close();
  }
}

function assertNoHang(r: { first: string; next: string }, firstStatus: number): void {
  assert.match(r.first, new RegExp(`^${firstStatus} `), JSON.stringify(r));
  if (r.first.endsWith('close')) assert.equal(r.next, 'closed', JSON.stringify(r));
  else assert.equal(r.next, '200', JSON.stringify(r));
}

describe('a body refused early leaves no connection hanging', () => {
  for (const size of [20_000, 130_000, 866_000]) {
    it(`a logon form of ${size} bytes: 400, then the next request is answered or the connection closed`, async () => {
      const cookie = await inProgressCookie();
      const head =
        `POST /sg/logon HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://${host}\r\nCookie: ${cookie}\r\n` +
        'Content-Type: application/x-www-form-urlencoded\r\n';
      assertNoHang(await refusedThenNext(head, size), 400);
    });
  }

  it('a cross-site logon form (403, body unread)', async () => {
    const cookie = await inProgressCookie();
    const head = `POST /sg/logon HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://evil.example\r\nCookie: ${cookie}\r\n`;
    assertNoHang(await refusedThenNext(head, 130_000), 403);
  });

  it('a logout with a body, from this site and from another', async () => {
    assertNoHang(
      await refusedThenNext(
        `POST /sg/logout HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://${host}\r\n`,
        130_000,
      ),
      204,
    );
    assertNoHang(
      await refusedThenNext(
        `POST /sg/logout HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://evil.example\r\n`,
        130_000,
      ),
      403,
    );
  });

  it('a gateway page that takes no body, and a logon page for a new session', async () => {
    assertNoHang(await refusedThenNext(`POST /sg/none HTTP/1.1\r\nHost: ${host}\r\n`, 130_000), 404);
    assertNoHang(
      await refusedThenNext(`POST /app HTTP/1.1\r\nHost: ${host}\r\nAccept: text/html\r\n`, 130_000),
      200,
    );
  });
});
