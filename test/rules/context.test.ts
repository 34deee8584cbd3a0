import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { findCookie } from '../../src/core/cookie-header.js';
import { ruleContext, type RuleScope } from '../../src/rules/context.js';
import { ipMatches } from '../../src/rules/ip.js';
import { testEngine } from '../session/helpers.js';
import { recordingLogger } from '../plugins/helpers.js';

function contextFor(url: string, headers: Record<string, string> = {}) {
  const { engine } = testEngine();
  const req = { method: 'GET', url, headers } as unknown as IncomingMessage;
  const scope: RuleScope = { engine, logger: recordingLogger(), http: { req, requestHeaders: {} } };
  return { ctx: ruleContext('HTTP_REQUEST', 'test.ts', scope), scope };
}

describe('ctx.http', () => {
  it('path and query are what URL parsing gives, for any request target', () => {
    // What Node's HTTP parser lets through in a request target (no spaces, no controls).
    const chars = fc.constantFrom(
      '/',
      '.',
      '%',
      '2',
      'e',
      'a',
      '?',
      '#',
      '=',
      '&',
      '\\',
      'é',
      '+',
      ':',
      '@',
      '~',
    );
    fc.assert(
      fc.property(fc.array(chars, { maxLength: 24 }), (parts) => {
        const target = `/${parts.join('')}`;
        const { ctx } = contextFor(target);
        let url: URL;
        try {
          url = new URL(target, 'http://gateway');
        } catch {
          assert.throws(() => ctx.http.path, `${JSON.stringify(target)} is no URL path`);
          return;
        }
        assert.equal(ctx.http.path, url.pathname, `path of ${JSON.stringify(target)}`);
        assert.deepEqual([...ctx.http.query], [...url.searchParams], `query of ${JSON.stringify(target)}`);
      }),
      { numRuns: 5000 },
    );
  });

  it('a cookie is found as a parsed map of the header would give it (property)', () => {
    const reference = (header: string, name: string): string | undefined => {
      const map = new Map<string, string>();
      for (const part of header.split(';')) {
        const eq = part.indexOf('=');
        if (eq <= 0) continue;
        const key = part.slice(0, eq).trim();
        if (!map.has(key)) map.set(key, part.slice(eq + 1).trim());
      }
      return map.get(name);
    };
    const piece = fc.constantFrom('a', 'b', 'MRHSession', '=', ';', ' ', '', 'x=1', ' a = 2 ');
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 16 }),
        fc.constantFrom('a', 'b', 'MRHSession', ''),
        (parts, name) => {
          const header = parts.join('');
          assert.equal(findCookie(header, name), reference(header, name), JSON.stringify([header, name]));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('reads cookies (first one wins), edits upstream headers, responds once; one view per request', () => {
    const { ctx, scope } = contextFor('/a?x=1', { cookie: 'MRHSession=abc; x=1; MRHSession=def', host: 'h' });
    assert.equal(ctx.http.cookie('MRHSession'), 'abc');
    assert.equal(ctx.http.cookie('nope'), undefined);
    ctx.http.headers.insert('X-A', '1');
    ctx.http.headers.insert('X-A', '2');
    ctx.http.headers.remove('Cookie');
    assert.deepEqual(scope.http?.requestHeaders, { 'x-a': '1, 2', cookie: null });
    assert.equal(ctx.http, ctx.http, 'built once');
    ctx.http.respond(401);
    assert.throws(() => ctx.http.respond(200), /only once/);
    assert.deepEqual(scope.http?.responded, { status: 401, headers: {}, body: '' });
  });
});

describe('ip.matches', () => {
  it('IPv4, IPv6 and IPv4-mapped addresses; malformed input is false', () => {
    assert.equal(ipMatches('192.168.255.17', '192.168.255.0/24'), true);
    assert.equal(ipMatches('192.168.254.17', '192.168.255.0/24'), false);
    assert.equal(ipMatches('::ffff:192.168.255.1', '192.168.255.0/24'), true);
    assert.equal(ipMatches('2001:db8::1', '2001:db8::/32'), true);
    assert.equal(ipMatches('2001:db9::1', '2001:db8::/32'), false);
    assert.equal(ipMatches('10.0.0.1', '2001:db8::/32'), false);
    assert.equal(ipMatches('10.0.0.1', '10.0.0.0/33'), false);
    assert.equal(ipMatches('not an ip', '10.0.0.0/8'), false);
    assert.equal(ipMatches(undefined, '10.0.0.0/8'), false);
    // The same network again comes from the cache and answers the same.
    assert.equal(ipMatches('192.168.255.200', '192.168.255.0/24'), true);
    assert.equal(ipMatches('192.168.0.1', '192.168.255.0/24'), false);
  });
});
