import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { normalizeTarget } from '../../src/gateway/http/target.js';
import { configuredLocation, sameOriginPath } from '../../src/gateway/http/location.js';

const pathOf = (target: string): string => {
  const t = normalizeTarget(target);
  return t.ok ? t.path + t.query : `refused: ${t.reason}`;
};

describe('normalizeTarget', () => {
  it('leaves a normal path as it is, without a copy', () => {
    const t = normalizeTarget('/api/items/42.json?x=/../y');
    assert.deepEqual(t, {
      ok: true,
      path: '/api/items/42.json',
      query: '?x=/../y',
      authority: undefined,
      encodedSlash: false,
      changed: false,
    });
  });

  it('removes dot segments and empty segments, keeping a trailing slash', () => {
    assert.equal(pathOf('/a/b/../c/./d'), '/a/c/d');
    assert.equal(pathOf('/../../etc/passwd'), '/etc/passwd');
    assert.equal(pathOf('//a///b//'), '/a/b/');
    assert.equal(pathOf('/a/.'), '/a/');
    assert.equal(pathOf('/a/b/..'), '/a/');
    assert.equal(pathOf('/..'), '/');
    assert.equal(pathOf('/.well-known/x'), '/.well-known/x');
    assert.equal(pathOf('/a/..b/c.'), '/a/..b/c.');
  });

  it('decodes unreserved escapes (also into dot segments) and upper-cases the rest', () => {
    assert.equal(pathOf('/%61%64min/%7e'), '/admin/~');
    assert.equal(pathOf('/x/%2E%2e/admin'), '/admin');
    assert.equal(pathOf('/%c3%a9t%c3%a9'), '/%C3%A9t%C3%A9');
    assert.equal(pathOf('/a%20b'), '/a%20b');
  });

  it('reduces absolute-form to origin-form and gives its authority', () => {
    const t = normalizeTarget('HTTP://example.org:8080/a/../b?q');
    assert.ok(t.ok);
    assert.equal(t.authority, 'example.org:8080');
    assert.equal(t.path + t.query, '/b?q');
    assert.equal(t.changed, true);
    assert.equal(pathOf('http://example.org'), '/');
    assert.equal(pathOf('http://example.org?x'), '/?x');
  });

  it('flags an encoded slash or backslash and refuses what cannot be decided on', () => {
    const t = normalizeTarget('/a%2fb');
    assert.ok(t.ok && t.encodedSlash && t.path === '/a%2Fb');
    assert.ok(
      normalizeTarget('/a%5cb').ok && (normalizeTarget('/a%5cb') as { encodedSlash: boolean }).encodedSlash,
    );
    for (const bad of [
      '/a\\b',
      '/a%00',
      '/a\0',
      '/a#frag',
      '/%zz',
      '/%4',
      '/x/..;/admin',
      '/x/.;a/admin',
      '*',
      'ftp://x/a',
      'http://user@host/a',
      'http:///a',
      'example.org:443',
    ]) {
      assert.match(pathOf(bad), /^refused: /, bad);
    }
  });

  it('is idempotent, and its output never holds a dot segment, // or an unreserved escape', () => {
    const segment = fc.oneof(
      fc.constantFrom('.', '..', '', 'a', 'A', '%2e', '%2E%2e', '%61', '%7E', 'x;y', '%2F', '~', '%C3%A9'),
      fc.stringMatching(/^[a-zA-Z0-9._~-]{1,6}$/),
    );
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 8 }), fc.boolean(), (segs, slash) => {
        const target = `/${segs.join('/')}${slash ? '/' : ''}`;
        const once = normalizeTarget(target);
        if (!once.ok) return;
        const twice = normalizeTarget(once.path);
        assert.ok(twice.ok);
        assert.equal(twice.path, once.path);
        assert.equal(twice.changed, false);
        assert.doesNotMatch(
          once.path,
          /(^|\/)\.\.?(\/|$)|\/\/|%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2[DE]|5F|7E)/i,
        );
      }),
      { numRuns: 2000 },
    );
  });
});

describe('sameOriginPath and configuredLocation', () => {
  it('let a same-origin path through and turn everything else into /', () => {
    assert.equal(sameOriginPath('/app/?x=1#y'), '/app/?x=1#y');
    for (const bad of [
      '//evil.example/',
      '/\\evil.example/',
      '\\\\evil.example',
      'https://evil.example/',
      'javascript:alert(1)',
      '/a\r\nSet-Cookie: x=1',
      '/\t/evil.example',
      '/a b',
      '/a\\b',
      '',
    ]) {
      assert.equal(sameOriginPath(bad), '/', JSON.stringify(bad));
    }
  });

  it('configured locations may name another site, and nothing else', () => {
    assert.equal(configuredLocation('https://portal.example/bye'), 'https://portal.example/bye');
    assert.equal(configuredLocation('/bye'), '/bye');
    assert.equal(configuredLocation('javascript:alert(1)'), '/');
    assert.equal(configuredLocation('https:/\\evil'), '/');
    assert.equal(configuredLocation('https://a.example/\nx'), '/');
  });
});
