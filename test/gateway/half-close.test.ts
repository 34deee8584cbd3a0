import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { basic, startTestGateway, testUpstream, type GatewayFixture, LOGON_CONFIG } from './harness.js';
import { RawConnection } from './raw-connection.js';

// A client may send its requests and then half-close (FIN) the connection: the requests that
// were received are still answered, proxied ones as much as the gateway's own.

const CONFIG = LOGON_CONFIG;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let port: number;
let cookie: string;

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  port = Number(new URL(fx.gw.url).port);
  const res = await fetch(`${fx.gw.url}/app`, { headers: { authorization: basic('alice', 'wonderland') } });
  await res.arrayBuffer();
  assert.equal(res.status, 200);
  cookie = res.headers
    .getSetCookie()
    .findLast((c) => c.startsWith('MRHSession='))!
    .split(';')[0]!;
});
after(async () => {
  await fx.close();
  await upstream.close();
});

/** Statuses of the answers to `count` requests sent at once followed by FIN, until the close. */
async function halfClosed(count: number, path: string, withCookie: boolean): Promise<string[]> {
  const c = await RawConnection.open(port);
  try {
    const one = `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${withCookie ? `Cookie: ${cookie}\r\n` : ''}\r\n`;
    await c.write(one.repeat(count));
    c.socket.end();
    const answers: string[] = [];
    for (;;) {
      const r = await c.read(3000);
      answers.push(r.kind === 'response' ? String(r.status) : r.kind);
      if (r.kind !== 'response') return answers;
    }
  } finally {
    c.close();
  }
}

describe('requests followed by a half-close', () => {
  for (const count of [1, 3]) {
    it(`${count} proxied request(s) of an allowed session: all answered, then the close`, async () => {
      assert.deepEqual(await halfClosed(count, '/app/x', true), [...Array(count).fill('200'), 'closed']);
    });
    it(`${count} of the gateway's own answers: all answered, then the close`, async () => {
      assert.deepEqual(await halfClosed(count, '/sg/static/sg.css', false), [
        ...Array(count).fill('200'),
        'closed',
      ]);
    });
  }

  it('a FIN in the middle of a body: the connection is closed (nothing waits for the rest)', async () => {
    for (const path of ['/app/x', '/sg/logon']) {
      const c = await RawConnection.open(port);
      try {
        await c.write(
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nCookie: ${cookie}\r\n` +
            'Content-Length: 100\r\n\r\n0123456789',
        );
        c.socket.end();
        const seen: string[] = [];
        for (let i = 0; i < 3 && seen.at(-1) !== 'closed'; i++) {
          const r = await c.read(3000);
          seen.push(r.kind === 'response' ? String(r.status) : r.kind);
        }
        assert.equal(seen.at(-1), 'closed', `${path}: ${seen.join(', ')}`);
        assert.ok(!seen.some((s) => s.startsWith('5')), `${path}: ${seen.join(', ')}`);
      } finally {
        c.close();
      }
    }
  });
});
