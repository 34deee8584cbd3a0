import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ProfileConfig } from '../../src/gateway/config/schema.js';
import { cookieOptions, matchRoute, type ActiveRoute } from '../../src/gateway/router.js';

/** Only what matchRoute reads of a route. */
const route = (host: string, pathPrefix: string): ActiveRoute =>
  ({ host, pathPrefix, index: 0 }) as unknown as ActiveRoute;

describe('matchRoute', () => {
  const routes = [
    route('*', '/'),
    route('*', '/api'),
    route('app.example', '/api'),
    route('*.example', '/x'),
  ];

  test('the longest path prefix wins; an exact host beats * at equal length', () => {
    assert.equal(matchRoute(routes, 'other:8080', '/page'), routes[0]);
    assert.equal(matchRoute(routes, 'other', '/api/v1'), routes[1]);
    assert.equal(matchRoute(routes, 'App.Example:443', '/api'), routes[2]);
    assert.equal(matchRoute(routes, 'a.example', '/x/y'), routes[3]);
  });

  test('a prefix matches whole segments only', () => {
    assert.equal(matchRoute(routes, 'other', '/apiary'), routes[0]);
    assert.equal(matchRoute([route('*', '/api')], 'other', '/apiary'), undefined);
  });

  test('a prefix matches without case, and path parameters (;) end a segment', () => {
    for (const path of ['/API/v1', '/Api', '/api;jsessionid=1/v1', '/API;x']) {
      assert.equal(matchRoute(routes, 'other', path), routes[1], path);
    }
    assert.equal(matchRoute(routes, 'other', '/api%2Fx'), routes[0]);
    assert.equal(matchRoute([route('*', '/Admin/')], 'other', '/admin/x')?.pathPrefix, '/Admin/');
  });
});

describe('cookieOptions', () => {
  const profile = (secure: boolean | 'auto') =>
    ({
      cookie: { name: 'MRHSession', secure, same_site: 'Lax', domain: undefined },
    }) as unknown as ProfileConfig;

  test('secure: auto follows the connection; a fixed setting does not', () => {
    const auto = profile('auto');
    assert.equal(cookieOptions(auto, false).secure, false);
    assert.equal(cookieOptions(auto, true).secure, true);
    const always = profile(true);
    assert.equal(cookieOptions(always, false).secure, true);
    assert.equal(cookieOptions(always, false).name, 'MRHSession');
    assert.equal(cookieOptions(always, false).sameSite, 'Lax');
  });

  test('made once per profile and connection kind, and read-only', () => {
    const p = profile('auto');
    assert.equal(cookieOptions(p, true), cookieOptions(p, true));
    assert.notEqual(cookieOptions(p, true), cookieOptions(p, false));
    assert.notEqual(cookieOptions(p, true), cookieOptions(profile('auto'), true), 'another profile');
    assert.ok(Object.isFrozen(cookieOptions(p, false)));
  });
});
