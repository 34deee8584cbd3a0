import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  buildRequestHeaders,
  classifyError,
  ClientAbortedError,
  stripCookieValue,
  stripResponseHeaders,
} from '../../../src/gateway/proxy/index.js';

const base = { clientIp: '192.0.2.1', proto: 'http' as const, host: 'app.example' };

/** Flat [name, value, ...] list to [name, value] pairs. */
function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe('buildRequestHeaders', () => {
  test('keeps end-to-end headers in order and original case, repeated ones too', () => {
    const out = pairs(
      buildRequestHeaders(
        ['Accept', 'text/html', 'X-Multi', '1', 'Host', 'app.example', 'X-Multi', '2'],
        base,
      ),
    );
    assert.deepEqual(out, [
      ['Accept', 'text/html'],
      ['X-Multi', '1'],
      ['X-Multi', '2'],
      ['x-forwarded-for', '192.0.2.1'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'app.example'],
    ]);
  });

  test('drops hop-by-hop headers, Expect, and what Connection names (several Connection headers)', () => {
    const out = buildRequestHeaders(
      [
        'Connection',
        'X-A , x-b',
        'Connection',
        'close',
        'X-A',
        '1',
        'x-B',
        '2',
        'Keep-Alive',
        'timeout=5',
        'Transfer-Encoding',
        'chunked',
        'Upgrade',
        'h2c',
        'Proxy-Authorization',
        'Basic x',
        'Proxy-Connection',
        'close',
        'Expect',
        '100-continue',
        'X-C',
        '3',
      ],
      base,
    );
    assert.deepEqual(pairs(out).slice(0, 1), [['X-C', '3']]);
    assert.equal(out.length, 8);
  });

  test('TE: only "trailers" survives, once', () => {
    const te = (v: string[]): string[] =>
      pairs(buildRequestHeaders(v, base))
        .filter(([n]) => n === 'te')
        .map(([, v]) => v);
    assert.deepEqual(te(['TE', 'trailers']), ['trailers']);
    assert.deepEqual(te(['TE', 'gzip;q=0.5, Trailers']), ['trailers']);
    assert.deepEqual(te(['TE', 'trailers', 'TE', 'trailers']), ['trailers']);
    assert.deepEqual(te(['TE', 'gzip, trailersx']), []);
    assert.deepEqual(te(['TE', 'trailers', 'Connection', 'TE']), []);
  });

  test('a duplicated identical Content-Length is sent once', () => {
    const out = pairs(buildRequestHeaders(['Content-Length', '5', 'Content-Length', '5'], base));
    assert.deepEqual(
      out.filter(([n]) => n.toLowerCase() === 'content-length'),
      [['Content-Length', '5']],
    );
  });

  test('requestHeaders: set replaces (any case), null removes, host override', () => {
    const out = pairs(
      buildRequestHeaders(['authorization', 'Basic abc', 'X-User', 'mallory', 'Accept', '*/*'], {
        ...base,
        requestHeaders: {
          Authorization: null,
          'x-user': 'alice',
          Host: 'internal.svc',
          'X-Forwarded-Proto': 'https',
        },
      }),
    );
    assert.deepEqual(out, [
      ['Accept', '*/*'],
      ['x-forwarded-for', '192.0.2.1'],
      ['x-forwarded-host', 'app.example'],
      ['x-user', 'alice'],
      ['Host', 'internal.svc'],
      ['X-Forwarded-Proto', 'https'],
    ]);
  });

  test('requestHeaders with lowercase names only (as the gateway sends them: used as given)', () => {
    const given = { 'x-forwarded-for': null, authorization: null, 'x-user': 'bob' };
    const out = pairs(
      buildRequestHeaders(['Authorization', 'Basic abc', 'X-User', 'mallory', 'X-Forwarded-For', '6.6.6.6'], {
        ...base,
        requestHeaders: given,
      }),
    );
    assert.deepEqual(out, [
      ['x-forwarded-for', '192.0.2.1'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'app.example'],
      ['x-user', 'bob'],
    ]);
    assert.deepEqual(given, { 'x-forwarded-for': null, authorization: null, 'x-user': 'bob' }, 'not changed');
  });

  test('stripCookies as a list or as a reused Set: the same Cookie header', () => {
    const raw = ['Cookie', 'a=1; MRHSession=tok; b=2', 'cookie', 'MRHSession=tok'];
    const cookies = (stripCookies: readonly string[] | ReadonlySet<string>) =>
      pairs(buildRequestHeaders(raw, { ...base, stripCookies })).filter(
        ([n]) => n.toLowerCase() === 'cookie',
      );
    const set = new Set(['MRHSession']);
    assert.deepEqual(cookies(['MRHSession']), [['Cookie', 'a=1; b=2']]);
    assert.deepEqual(cookies(set), [['Cookie', 'a=1; b=2']]);
    assert.deepEqual(cookies(set), [['Cookie', 'a=1; b=2']], 'the Set is only read');
    assert.deepEqual(cookies([]), [
      ['Cookie', 'a=1; MRHSession=tok; b=2'],
      ['cookie', 'MRHSession=tok'],
    ]);
  });

  test('requestHeaders cannot add hop-by-hop headers', () => {
    const out = pairs(
      buildRequestHeaders([], {
        ...base,
        requestHeaders: {
          Connection: 'close',
          'Transfer-Encoding': 'chunked',
          Upgrade: 'x',
          Expect: '100-continue',
        },
      }),
    );
    assert.deepEqual(
      out.map(([n]) => n),
      ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'],
    );
  });

  test('preserveHost sends the original host exactly once', () => {
    const out = pairs(buildRequestHeaders(['Host', 'spoofed'], { ...base, preserveHost: true }));
    assert.deepEqual(
      out.filter(([n]) => n.toLowerCase() === 'host'),
      [['host', 'app.example']],
    );
  });

  test('X-Forwarded-For: repeated incoming headers form one chain; a blank given chain counts as none', () => {
    const xff = (raw: string[], requestHeaders?: Record<string, string | null>): string | undefined =>
      pairs(buildRequestHeaders(raw, { ...base, ...(requestHeaders ? { requestHeaders } : {}) })).find(
        ([n]) => n === 'x-forwarded-for',
      )?.[1];
    assert.equal(
      xff(['X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2']),
      '1.1.1.1, 2.2.2.2, 192.0.2.1',
    );
    assert.equal(xff(['X-Forwarded-For', '1.1.1.1'], { 'x-forwarded-for': '  ' }), '192.0.2.1');
    assert.equal(xff([], { 'x-forwarded-for': '10.1.1.1' }), '10.1.1.1, 192.0.2.1');
  });
});

describe('stripCookieValue', () => {
  const names = new Set(['sg', 'sg_mfa']);
  test('removes only exact names', () => {
    assert.equal(stripCookieValue('a=1; sg=x; sgx=2; xsg=3', names), 'a=1; sgx=2; xsg=3');
    assert.equal(stripCookieValue('sg=x;sg_mfa=y', names), '');
    assert.equal(stripCookieValue(' sg = x ; b=2', names), 'b=2');
    assert.equal(stripCookieValue('a=1;b=2', names), 'a=1;b=2', 'untouched when nothing is removed');
    assert.equal(stripCookieValue('a=1; sg=x; sg=y; c=3', names), 'a=1; c=3');
  });
});

describe('stripResponseHeaders', () => {
  test('removes hop-by-hop headers and the ones Connection names', () => {
    const h: Record<string, string | string[]> = {
      connection: 'x-a, X-B',
      'x-a': '1',
      'x-b': '2',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      'proxy-authenticate': 'Basic',
      trailer: 'x-sum',
      'set-cookie': ['a=1', 'b=2'],
    };
    stripResponseHeaders(h);
    assert.deepEqual(h, { trailer: 'x-sum', 'set-cookie': ['a=1', 'b=2'] });
  });
});

describe('classifyError', () => {
  const err = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });
  test('maps undici errors to results', () => {
    assert.equal(classifyError(err('ECONNREFUSED'), false).reason, 'connect_failed');
    assert.equal(classifyError(err('UND_ERR_CONNECT_TIMEOUT'), false).reason, 'connect_failed');
    assert.deepEqual(
      [
        classifyError(err('UND_ERR_HEADERS_TIMEOUT'), true).status,
        classifyError(err('UND_ERR_BODY_TIMEOUT'), true).reason,
      ],
      [504, 'timeout'],
    );
    assert.equal(classifyError(err('UND_ERR_SOCKET', 'other side closed'), true).reason, 'reset');
    assert.equal(classifyError(err('UND_ERR_SOCKET', 'bad response'), true).reason, 'bad_response');
    assert.equal(
      classifyError(Object.assign(new Error('p'), { name: 'HTTPParserError' }), true).reason,
      'bad_response',
    );
    assert.equal(classifyError(err('ECONNRESET'), true).reason, 'reset');
    const aborted = classifyError(new ClientAbortedError(), true);
    assert.deepEqual([aborted.status, aborted.reason], [499, 'client_aborted']);
  });
});
