import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, describe, test } from 'node:test';
import { Upstream } from '../../../src/gateway/proxy/index.js';
import { deadPort, listen, rawValues, readBody, request, startProxy, startUpstream } from './helpers.js';
import type { TestProxy, TestServer } from './helpers.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** An upstream that answers with what it received, as JSON. */
async function echoUpstream(): Promise<TestServer> {
  return startUpstream((req, res) => {
    void readBody(req).then((body) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          headers: req.headers,
          rawHeaders: req.rawHeaders,
          bodyLength: body.length,
          bodySha: sha(body),
        }),
      );
    });
  });
}

interface Echo {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  bodyLength: number;
  bodySha: string;
}
const echo = (b: Buffer): Echo => JSON.parse(b.toString()) as Echo;

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});
async function pair(up: TestServer, o: Partial<Parameters<typeof startProxy>[0]> = {}): Promise<TestProxy> {
  const p = await startProxy({ ...o, upstream: { ...o.upstream, url: o.upstream?.url ?? up.url } });
  cleanup.push(
    () => p.close(),
    () => up.close(),
  );
  return p;
}

describe('forward: request line and bodies', () => {
  test('method, path and query are passed as sent', async () => {
    const p = await pair(await echoUpstream());
    for (const method of ['GET', 'DELETE', 'OPTIONS', 'PATCH']) {
      const r = await request(p.url, { method, path: '/a/b%20c/?x=1&y=%2F&x=2' });
      assert.equal(r.status, 200);
      const e = echo(r.body);
      assert.equal(e.method, method);
      assert.equal(e.url, '/a/b%20c/?x=1&y=%2F&x=2');
    }
    assert.deepEqual(
      p.results.map((r) => r.ok),
      [true, true, true, true],
    );
  });

  test('an upstream URL with a path prefixes it; ForwardOptions.path replaces req.url', async () => {
    const up = await echoUpstream();
    const p = await pair(up, { upstream: { url: `${up.url}/base/` } });
    assert.equal(echo((await request(p.url, { path: '/x?q=1' })).body).url, '/base/x?q=1');
    const p2 = await pair(await echoUpstream(), { forward: { path: '/rewritten?z' } });
    assert.equal(echo((await request(p2.url, { path: '/orig' })).body).url, '/rewritten?z');
  });

  test('an absolute-form request target reaches the upstream in origin-form', async () => {
    const up = await echoUpstream();
    const p = await pair(up);
    const { connect } = await import('node:net');
    const raw = await new Promise<string>((resolve, reject) => {
      const s = connect(p.port, '127.0.0.1', () =>
        s.write(
          'GET http://admin.internal/secret?a=1 HTTP/1.1\r\nHost: admin.internal\r\nConnection: close\r\n\r\n',
        ),
      );
      let buf = '';
      s.on('data', (c: Buffer) => (buf += c.toString()));
      s.on('end', () => resolve(buf));
      s.on('error', reject);
    });
    const e = echo(Buffer.from(raw.slice(raw.indexOf('\r\n\r\n') + 4)));
    assert.equal(e.url, '/secret?a=1');
  });

  test('a 5 MB body streams up and a 5 MB body streams down', async () => {
    const big = randomBytes(5 * 1024 * 1024);
    const up = await startUpstream((req, res) => {
      // Echo the body as it arrives.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    });
    const p = await pair(up);
    const r = await request(p.url, { method: 'POST', body: big, headers: { 'content-length': big.length } });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, big.length);
    assert.equal(sha(r.body), sha(big));
  });

  test('a chunked upload (no Content-Length) reaches the upstream whole, chunked', async () => {
    const p = await pair(await echoUpstream());
    const parts = [randomBytes(1000), randomBytes(70_000), randomBytes(3)];
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const req = http.request(`${p.url}/upload`, { method: 'PUT', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
      // Each write goes out as its own chunk; the proxy must not wait for the end.
      for (const part of parts) req.write(part);
      req.end();
    });
    const e = echo(reply);
    assert.equal(e.headers['transfer-encoding'], 'chunked');
    assert.equal(e.headers['content-length'], undefined);
    assert.equal(e.bodyLength, 71_003);
    assert.equal(e.bodySha, sha(Buffer.concat(parts)));
  });

  test('a slowly streamed response is seen by the client chunk by chunk', async () => {
    let next!: () => void;
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      next = () => {
        n += 1;
        if (n < 4) res.write(`chunk${n};`);
        else res.end('end');
      };
      next();
    });
    const p = await pair(up);
    const seen = await new Promise<string[]>((resolve, reject) => {
      const got: string[] = [];
      http
        .get(`${p.url}/stream`, { agent: false }, (res) => {
          res.setEncoding('utf8');
          // The upstream writes the next chunk only after the client has seen the previous one:
          // a proxy that buffered would never deliver the first.
          res.on('data', (c: string) => {
            got.push(c);
            next();
          });
          res.on('end', () => resolve(got));
        })
        .on('error', reject);
    });
    assert.deepEqual(seen, ['chunk1;', 'chunk2;', 'chunk3;', 'end']);
  });

  test('backpressure: a client that stops reading stalls the upstream; nothing piles up in the proxy', async () => {
    const CHUNK = Buffer.alloc(64 * 1024, 120);
    const TOTAL = 128 * 1024 * 1024;
    let stalledAt!: (written: number) => void;
    const stalled = new Promise<number>((r) => (stalledAt = r));
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': String(TOTAL) });
      let written = 0;
      let timer: NodeJS.Timeout | undefined;
      const pump = (): void => {
        clearTimeout(timer);
        while (written < TOTAL) {
          written += CHUNK.length;
          if (!res.write(CHUNK)) {
            // No drain for 300 ms: the proxy has stopped reading (the thing under test is a wait).
            timer = setTimeout(() => stalledAt(written), 300);
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const p = await pair(up);
    const received = await new Promise<number>((resolve, reject) => {
      http
        .get(p.url, { agent: false }, (res) => {
          let n = 0;
          res.on('data', (c: Buffer) => (n += c.length));
          res.once('data', () => {
            res.pause();
            void stalled.then((written) => {
              assert.ok(written < 48 * 1024 * 1024, `upstream wrote ${written} bytes into a stalled client`);
              res.resume();
            });
          });
          res.on('end', () => resolve(n));
          res.on('error', reject);
        })
        .on('error', reject);
    });
    assert.equal(received, TOTAL);
  });

  test('Expect: 100-continue is answered by the gateway and the body still arrives', async () => {
    const p = await pair(await echoUpstream());
    const body = Buffer.from('after continue');
    const reply = await new Promise<Buffer>((resolve, reject) => {
      const req = http.request(p.url, {
        method: 'POST',
        agent: false,
        headers: { expect: '100-continue', 'content-length': body.length },
      });
      req.on('continue', () => req.end(body));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      });
      req.on('error', reject);
    });
    const e = echo(reply);
    assert.equal(e.headers.expect, undefined);
    assert.equal(e.bodySha, sha(body));
  });

  test('1xx interim responses (103 Early Hints) are not relayed; the final response is', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      res.end('final');
    });
    const p = await pair(up);
    const r = await request(p.url);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'final');
  });

  test('HEAD, 204 and 304 pass without a body', async () => {
    const up = await startUpstream((req, res) => {
      if (req.url === '/204') res.writeHead(204).end();
      else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
      else res.writeHead(200, { 'content-length': '11', 'content-type': 'text/plain' }).end('hello world');
    });
    const p = await pair(up);
    const head = await request(p.url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '11');
    assert.equal(head.body.length, 0);
    assert.equal((await request(p.url, { path: '/204' })).status, 204);
    const nm = await request(p.url, { path: '/304' });
    assert.equal(nm.status, 304);
    assert.equal(nm.headers.etag, '"x"');
    const get = await request(p.url);
    assert.equal(get.body.toString(), 'hello world');
  });

  test('status message and response trailers are relayed', async () => {
    const up = await startUpstream((_req, res) => {
      res.statusMessage = 'Very Teapot';
      res.writeHead(418, { trailer: 'x-checksum', 'content-type': 'text/plain' });
      res.write('body');
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
    });
    const p = await pair(up);
    const r = await new Promise<{ msg: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      http
        .get(p.url, { agent: false, headers: { te: 'trailers' } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ msg: res.statusMessage ?? '', trailers: res.trailers }));
        })
        .on('error', reject);
    });
    assert.equal(r.msg, 'Very Teapot');
    assert.equal(r.trailers['x-checksum'], 'abc123');
  });
});

describe('forward: headers', () => {
  test('hop-by-hop request headers are stripped, including the ones named in Connection', async () => {
    const p = await pair(await echoUpstream());
    const r = await request(p.url, {
      headers: [
        'Connection',
        'keep-alive, X-Hop-One',
        'connection',
        'x-hop-two',
        'X-Hop-One',
        'a',
        'X-Hop-Two',
        'b',
        'Keep-Alive',
        'timeout=5',
        'Proxy-Connection',
        'keep-alive',
        'Proxy-Authorization',
        'Basic Zm9vOmJhcg==',
        'TE',
        'trailers, deflate;q=0.5',
        'X-End-To-End',
        'kept',
        'Authorization',
        'Bearer kept',
      ],
    });
    const h = echo(r.body).headers;
    for (const name of ['x-hop-one', 'x-hop-two', 'keep-alive', 'proxy-connection', 'proxy-authorization'])
      assert.equal(h[name], undefined, name);
    assert.equal(h['te'], 'trailers');
    assert.equal(h['x-end-to-end'], 'kept');
    assert.equal(h['authorization'], 'Bearer kept');
    // undici's own connection header for the upstream hop, not the client's.
    assert.notEqual(h['connection'], 'keep-alive, X-Hop-One');
  });

  test('TE without "trailers" is dropped', async () => {
    const p = await pair(await echoUpstream());
    const h = echo((await request(p.url, { headers: { te: 'deflate' } })).body).headers;
    assert.equal(h['te'], undefined);
  });

  test('hop-by-hop response headers are stripped, including the ones named in Connection', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, [
        'Connection',
        'X-Up-Hop',
        'X-Up-Hop',
        'secret',
        'Keep-Alive',
        'timeout=1, max=7',
        'Proxy-Authenticate',
        'Basic realm="up"',
        'Proxy-Connection',
        'keep-alive',
        'X-Kept',
        'yes',
        'Content-Type',
        'text/plain',
      ]);
      res.end('ok');
    });
    const p = await pair(up);
    const r = await request(p.url);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-up-hop'], undefined);
    assert.equal(r.headers['proxy-authenticate'], undefined);
    assert.equal(r.headers['proxy-connection'], undefined);
    assert.notEqual(r.headers['keep-alive'], 'timeout=1, max=7');
    assert.equal(r.headers['x-kept'], 'yes');
    assert.equal(r.body.toString(), 'ok');
  });

  test('X-Forwarded-For appends the client; -Proto and -Host replace what the client sent', async () => {
    const p = await pair(await echoUpstream(), {
      forward: (req) => ({
        clientIp: '203.0.113.7',
        proto: 'https',
        host: req.headers.host ?? '',
      }),
    });
    const r = await request(p.url, {
      headers: {
        host: 'app.example',
        'x-forwarded-for': '198.51.100.1, 198.51.100.2',
        'x-forwarded-proto': 'gopher',
        'x-forwarded-host': 'evil.example',
      },
    });
    const e = echo(r.body);
    assert.equal(e.headers['x-forwarded-for'], '198.51.100.1, 198.51.100.2, 203.0.113.7');
    assert.equal(e.headers['x-forwarded-proto'], 'https');
    assert.equal(e.headers['x-forwarded-host'], 'app.example');
    // Without preserveHost the upstream sees its own host.
    assert.equal(e.headers.host, `127.0.0.1:${new URL(p.upstream.origin).port}`);
    assert.equal(rawValues(e.rawHeaders, 'host').length, 1);
  });

  test('a gateway-given chain replaces the incoming one; null starts a new chain', async () => {
    const p = await pair(await echoUpstream(), {
      forward: (req) => ({
        clientIp: '203.0.113.7',
        requestHeaders: { 'X-Forwarded-For': req.url === '/none' ? null : '10.0.0.1' },
      }),
    });
    const spoof = { 'x-forwarded-for': '6.6.6.6' };
    assert.equal(
      echo((await request(p.url, { path: '/given', headers: spoof })).body).headers['x-forwarded-for'],
      '10.0.0.1, 203.0.113.7',
    );
    assert.equal(
      echo((await request(p.url, { path: '/none', headers: spoof })).body).headers['x-forwarded-for'],
      '203.0.113.7',
    );
  });

  test('preserveHost sends the original Host', async () => {
    const up = await echoUpstream();
    const p = await pair(up, { upstream: { url: up.url, preserveHost: true } });
    const e = echo((await request(p.url, { headers: { host: 'app.example:8443' } })).body);
    assert.equal(e.headers.host, 'app.example:8443');
    assert.equal(rawValues(e.rawHeaders, 'host').length, 1);
  });

  test('the session cookie is stripped, other cookies stay; an emptied Cookie header is dropped', async () => {
    const p = await pair(await echoUpstream(), { forward: { stripCookies: ['sg_session', 'sg_other'] } });
    const mixed = echo(
      (await request(p.url, { headers: { cookie: 'a=1; sg_session=SECRET; b=two=2;sg_other=x; c' } })).body,
    );
    assert.equal(mixed.headers.cookie, 'a=1; b=two=2; c');
    assert.ok(!JSON.stringify(mixed).includes('SECRET'));
    const only = echo((await request(p.url, { headers: { cookie: 'sg_session=SECRET' } })).body);
    assert.equal(only.headers.cookie, undefined);
    assert.deepEqual(rawValues(only.rawHeaders, 'cookie'), []);
    // Several Cookie headers: each is filtered.
    const multi = echo(
      (await request(p.url, { headers: ['Cookie', 'sg_session=SECRET', 'Cookie', 'keep=1; sg_other=y'] }))
        .body,
    );
    assert.deepEqual(rawValues(multi.rawHeaders, 'cookie'), ['keep=1']);
  });

  test('requestHeaders set and remove headers after stripping', async () => {
    const p = await pair(await echoUpstream(), {
      forward: { requestHeaders: { 'X-Injected': 'yes', authorization: null, 'x-user': 'alice' } },
    });
    const e = echo(
      (await request(p.url, { headers: { authorization: 'Basic eHh4Onl5eQ==', 'x-user': 'mallory' } })).body,
    );
    assert.equal(e.headers['x-injected'], 'yes');
    assert.equal(e.headers.authorization, undefined);
    assert.equal(e.headers['x-user'], 'alice');
    assert.deepEqual(rawValues(e.rawHeaders, 'x-user'), ['alice']);
  });

  test('several Set-Cookie headers stay separate; a Set-Cookie set by the gateway is kept too', async () => {
    const up = await startUpstream((_req, res) => {
      res.setHeader('set-cookie', [
        'a=1; Path=/',
        'b=2; HttpOnly',
        'c=3, with comma; Expires=Wed, 21 Oct 2037 07:28:00 GMT',
      ]);
      res.end('ok');
    });
    const p = await pair(up);
    const r = await request(p.url);
    assert.deepEqual(rawValues(r.rawHeaders, 'set-cookie'), [
      'a=1; Path=/',
      'b=2; HttpOnly',
      'c=3, with comma; Expires=Wed, 21 Oct 2037 07:28:00 GMT',
    ]);
  });

  test('a Set-Cookie the gateway set before forwarding is sent along with the upstream ones', async () => {
    const up = await startUpstream((_req, res) => {
      res.setHeader('set-cookie', 'app=1');
      res.end();
    });
    const upstream = new Upstream({ url: up.url });
    const gw = await listen(
      http.createServer((req: IncomingMessage, res: ServerResponse) => {
        // e.g. the session token was just rotated
        res.setHeader('set-cookie', 'sg_session=NEW; HttpOnly');
        void upstream.forward(req, res, { clientIp: '127.0.0.1', proto: 'http', host: 'x' });
      }),
    );
    cleanup.push(
      () => gw.close(),
      () => upstream.close(),
      () => up.close(),
    );
    const r = await request(gw.url);
    assert.deepEqual(rawValues(r.rawHeaders, 'set-cookie'), ['sg_session=NEW; HttpOnly', 'app=1']);
  });

  test('onResponse sees status and stripped headers and may change them', async () => {
    const seen: { status: number; names: string[] }[] = [];
    const up = await startUpstream((_req, res) => {
      res.writeHead(201, {
        connection: 'x-gone',
        'x-gone': '1',
        'x-remove': '1',
        'content-type': 'text/plain',
      });
      res.end('made');
    });
    const p = await pair(up, {
      forward: {
        onResponse: (status, headers) => {
          seen.push({ status, names: Object.keys(headers).sort() });
          delete headers['x-remove'];
          headers['x-added'] = ['1', '2'];
        },
      },
    });
    const r = await request(p.url);
    assert.equal(r.status, 201);
    assert.equal(r.headers['x-remove'], undefined);
    assert.deepEqual(rawValues(r.rawHeaders, 'x-added'), ['1', '2']);
    assert.equal(seen[0]?.status, 201);
    assert.ok(!seen[0]?.names.includes('x-gone'));
    assert.ok(!seen[0]?.names.includes('connection'));
    assert.ok(seen[0]?.names.includes('x-remove'));
  });

  test('a throwing onResponse fails with 502 bad_response before anything is sent', async () => {
    const up = await startUpstream((_req, res) => res.end('x'));
    const p = await pair(up, {
      forward: {
        onResponse: () => {
          throw new Error('rule failed');
        },
      },
    });
    const r = await request(p.url);
    assert.equal(r.status, 502);
    assert.equal(r.body.toString(), 'gateway bad_response');
    const res = p.results[0];
    assert.ok(res && !res.ok && res.reason === 'bad_response' && /rule failed/.test(res.message));
  });
});

describe('forward: failures', () => {
  test('upstream down: 502 connect_failed and nothing written to the response', async () => {
    const port = await deadPort();
    const p = await startProxy({ upstream: { url: `http://127.0.0.1:${port}` } });
    cleanup.push(() => p.close());
    const r = await request(p.url, { method: 'POST', body: 'data', headers: { 'content-length': 4 } });
    // The body is the test gateway's own page: forward() left the response alone.
    assert.equal(r.status, 502);
    assert.equal(r.body.toString(), 'gateway connect_failed');
    assert.equal(p.headersSentAtResult[0], false);
    const res = p.results[0];
    assert.ok(res && !res.ok);
    assert.equal(res.status, 502);
    assert.equal(res.reason, 'connect_failed');
    assert.match(res.message, /ECONNREFUSED|connect/);
  });

  test('upstream that never answers: 504 timeout after headersTimeout', async () => {
    const up = await startUpstream(() => {
      // never answers
    });
    const p = await pair(up, { upstream: { url: up.url, headersTimeoutMs: 200 } });
    const started = Date.now();
    const r = await request(p.url);
    assert.equal(r.status, 504);
    assert.equal(r.body.toString(), 'gateway timeout');
    assert.ok(Date.now() - started >= 150);
    const res = p.results[0];
    assert.ok(res && !res.ok && res.status === 504 && res.reason === 'timeout');
    assert.equal(p.headersSentAtResult[0], false);
  });

  test('body idle timeout after the response started: the client connection is destroyed', async () => {
    const up = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
      // and then nothing
    });
    const p = await pair(up, { upstream: { url: up.url, bodyTimeoutMs: 200 } });
    const result = p.nextResult();
    const err = await request(p.url).then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(err, 'the client must see the response fail, not end cleanly');
    const res = await result;
    assert.ok(!res.ok && res.status === 504 && res.reason === 'timeout');
  });

  test('upstream resets mid-body: the client socket is destroyed', async () => {
    const up = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(1000, 97), () => req.socket.destroy());
    });
    const p = await pair(up);
    const result = p.nextResult();
    const err = await request(p.url).then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(err, 'the client must see an error, not a short body');
    const res = await result;
    assert.ok(!res.ok);
    assert.equal(res.reason, 'reset');
    assert.equal(p.headersSentAtResult[0], true);
  });

  test('upstream closes before answering: 502 reset, nothing written', async () => {
    const up = await startUpstream((req) => req.socket.destroy());
    const p = await pair(up);
    const r = await request(p.url);
    assert.equal(r.status, 502);
    assert.equal(r.body.toString(), 'gateway reset');
  });

  test('upstream answers garbage: 502 bad_response', async () => {
    const { createServer } = await import('node:net');
    const raw = createServer((s) => {
      s.on('data', () => s.end('NOT HTTP AT ALL\r\n\r\n'));
      s.on('error', () => {});
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const port = (raw.address() as { port: number }).port;
    const p = await startProxy({ upstream: { url: `http://127.0.0.1:${port}` } });
    cleanup.push(
      () => p.close(),
      () => new Promise<void>((resolve) => raw.close(() => resolve())),
    );
    const r = await request(p.url);
    assert.equal(r.status, 502);
    assert.equal(r.body.toString(), 'gateway bad_response');
  });

  test('client aborts while waiting: the upstream sees the abort', async () => {
    let arrived!: () => void;
    const arrival = new Promise<void>((r) => (arrived = r));
    let upstreamClosed!: (finished: boolean) => void;
    const closed = new Promise<boolean>((r) => (upstreamClosed = r));
    const up = await startUpstream((_req, res) => {
      res.on('close', () => upstreamClosed(res.writableFinished));
      arrived();
    });
    const p = await pair(up);
    const result = p.nextResult();
    const req = http.get(p.url, { agent: false });
    req.on('error', () => {});
    await arrival;
    req.destroy();
    assert.equal(await closed, false);
    const res = await result;
    assert.ok(!res.ok && res.status === 499 && res.reason === 'client_aborted');
    // The upstream's socket went away too: nothing left open in the pool.
    assert.equal(up.sockets.filter((s) => !s.destroyed).length, 0);
  });

  test('a request queued for a busy pool whose client left is never sent', async () => {
    const seen: string[] = [];
    let release!: () => void;
    let arrived!: () => void;
    const arrival = new Promise<void>((r) => (arrived = r));
    let forwarded!: () => void;
    const secondForwarded = new Promise<void>((r) => (forwarded = r));
    const up = await startUpstream((req, res) => {
      seen.push(req.url ?? '');
      release = () => res.end('first');
      arrived();
    });
    const p = await pair(up, {
      upstream: { url: up.url, connections: 1 },
      forward: (req) => {
        if (req.url === '/second') forwarded();
        return {};
      },
    });
    const first = request(p.url, { path: '/first' });
    await arrival;
    // The only connection is busy: /second waits in undici's queue.
    const second = http.get(`${p.url}/second`, { agent: false });
    second.on('error', () => {});
    await secondForwarded;
    const gatewaySide = p.sockets[1];
    assert.ok(gatewaySide);
    const gone = new Promise((r) => gatewaySide.once('close', r));
    second.destroy();
    await gone;
    const results = [p.nextResult(), p.nextResult()];
    release();
    assert.equal((await first).body.toString(), 'first');
    const [r1, r2] = await Promise.all(results);
    assert.ok(r1?.ok);
    assert.ok(r2 && !r2.ok && r2.reason === 'client_aborted', JSON.stringify(r2));
    assert.deepEqual(seen, ['/first']);
  });

  test('client aborts mid-upload: the upstream sees the request body abort', async () => {
    let gotData!: () => void;
    const someData = new Promise<void>((r) => (gotData = r));
    const upstreamSaw = new Promise<string>((resolve) => {
      void startUpstream((req) => {
        req.once('data', () => gotData());
        req.on('aborted', () => resolve('aborted'));
        req.on('error', () => resolve('error'));
        req.on('end', () => resolve('end'));
      }).then(async (up) => {
        const p = await pair(up);
        const r = http.request(p.url, {
          method: 'POST',
          agent: false,
          headers: { 'content-length': 1_000_000 },
        });
        r.on('error', () => {});
        r.write(Buffer.alloc(10_000));
        await someData;
        r.destroy();
      });
    });
    assert.notEqual(await upstreamSaw, 'end');
  });

  test('keep-alive: many requests reuse a few upstream connections', async () => {
    const up = await startUpstream((_req, res) => res.end('ok'));
    const p = await pair(up);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 5 });
    cleanup.push(async () => agent.destroy());
    for (let round = 0; round < 20; round++) {
      const replies = await Promise.all(Array.from({ length: 5 }, () => request(p.url, { agent })));
      for (const r of replies) assert.equal(r.body.toString(), 'ok');
    }
    assert.equal(p.results.length, 100);
    assert.ok(up.sockets.length <= 5, `upstream saw ${up.sockets.length} connections for 100 requests`);
  });

  test('destroy() fails a request in flight at once', async () => {
    let arrived!: () => void;
    const arrival = new Promise<void>((r) => (arrived = r));
    const up = await startUpstream(() => arrived());
    const p = await pair(up);
    const result = p.nextResult();
    const pending = request(p.url);
    await arrival;
    await p.upstream.destroy();
    const res = await result;
    assert.ok(!res.ok && res.status === 502);
    assert.equal((await pending).status, 502);
  });

  test('close() waits for a request in flight, then refuses new ones', async () => {
    let release!: () => void;
    let arrived!: () => void;
    const arrival = new Promise<void>((r) => (arrived = r));
    const up = await startUpstream((_req, res) => {
      release = () => res.end('late');
      arrived();
    });
    const p = await pair(up);
    const pending = request(p.url);
    await arrival;
    const closing = p.upstream.close();
    release();
    assert.equal((await pending).body.toString(), 'late');
    await closing;
    const after = await request(p.url);
    assert.equal(after.status, 502);
  });
});
