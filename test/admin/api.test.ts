import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { API_ROUTES, matchApi } from '../../src/admin/api.js';
import { OPENAPI } from '../../src/admin/openapi.js';
import { ManualClock } from '../../src/core/clock.js';
import { startTestAdmin, TOKEN, type AdminFixture } from './helpers.js';

let fx: AdminFixture;
/** Status codes seen per operation (`METHOD template`), checked against the OpenAPI document at the end. */
const seen = new Map<string, Set<number>>();

async function call(
  method: string,
  path: string,
  body?: unknown,
  o?: { token?: string | null; headers?: Record<string, string> },
) {
  const out = await fx.call(method, path, body, o);
  const found = matchApi(method, path.split('?')[0]!);
  if (found && 'route' in found) {
    const key = `${method} ${found.route.path}`;
    if (!seen.has(key)) seen.set(key, new Set());
    seen.get(key)!.add(out.status);
  }
  if (out.status >= 400) {
    assert.match(out.body?.error?.code ?? '', /^SG_ERR_[A-Z_]+$/, `error body of ${method} ${path}`);
    assert.equal(typeof out.body.error.message, 'string');
  }
  return out;
}

async function create(body: Record<string, unknown> = {}): Promise<{ id: string; token: string }> {
  const res = await call('POST', '/api/v1/sessions', body);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

const SESSION_KEYS = OPENAPI.components.schemas.Session.required;

before(async () => {
  fx = await startTestAdmin();
});
after(() => fx.close());

describe('authentication', () => {
  it('every route but the OpenAPI document answers 401 without a valid token (constant-time check)', async () => {
    for (const route of API_ROUTES) {
      const path = route.path
        .replace('{id}', '0123456789abcdef0123456789abcdef')
        .replace('{name}', 'session.custom.x');
      for (const token of [null, 'wrong', `${TOKEN}x`, '']) {
        const res = await call(route.method, path, undefined, { token });
        if (!route.auth) {
          assert.equal(res.status, 200);
          continue;
        }
        assert.equal(res.status, 401, `${route.method} ${path} with ${token}`);
        assert.equal(res.body.error.code, 'SG_ERR_UNAUTHORIZED');
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
    }
  });

  it('accepts the token with any case of "Bearer"', async () => {
    const res = await call('GET', '/api/v1/stats', undefined, {
      token: null,
      headers: { authorization: `bearer ${TOKEN}` },
    });
    assert.equal(res.status, 200);
  });
});

describe('POST /api/v1/sessions', () => {
  it('creates an allowed session and returns its id and token once', async () => {
    const { id, token } = await create({
      user: 'alice',
      timeout: 60,
      lifetime: 600,
      client_ip: '10.0.0.7',
      variables: { 'session.custom.team': 'blue' },
    });
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(fx.engine.sid(token), id);
    assert.equal(await fx.engine.exists(token, { state: 'allow' }), true);
    const s = (await fx.engine.get(id))!;
    assert.equal(s.user, 'alice');
    assert.equal(s.idleTimeout, 60);
    assert.equal(s.lifetime, 600);
    assert.equal(s.clientIp, '10.0.0.7');
    assert.equal(s.variables['session.custom.team'], 'blue');
  });

  it('uses the default profile without a body, and takes an explicit state', async () => {
    const res = await call('POST', '/api/v1/sessions');
    assert.equal(res.status, 201);
    const s = (await fx.engine.get(res.body.id))!;
    assert.equal(s.idleTimeout, 900);
    assert.equal(s.state, 'allow');
    const pending = await create({ state: 'inprogress' });
    assert.equal((await fx.engine.get(pending.id))!.state, 'inprogress');
  });

  it('refuses bad input with 400 naming the field', async () => {
    const cases: [unknown, string][] = [
      [{ timeout: -1 }, 'timeout'],
      [{ timeout: 1.5 }, 'timeout'],
      [{ lifetime: 'long' }, 'lifetime'],
      [{ user: '' }, 'user'],
      [{ user: 'a\nb' }, 'user'],
      [{ state: 'maybe' }, 'state'],
      [{ client_ip: 'nope' }, 'client_ip'],
      [{ variables: { 'session.custom.x': 5 } }, 'variables.session.custom.x'],
      [{ variables: { 'bad name!': 'x' } }, 'variables.bad name!'],
      [{ variables: { 'session.user.sessionid': 'x' } }, 'variables.session.user.sessionid'],
      [{ colour: 'red' }, 'colour'],
      [[1, 2], 'body'],
      ['{not json', 'body'],
    ];
    for (const [body, field] of cases) {
      const res = await call('POST', '/api/v1/sessions', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error.code, 'SG_ERR_INVALID_REQUEST');
      assert.ok(res.body.error.message.startsWith(`${field}: `), `${res.body.error.message} names ${field}`);
    }
  });
});

describe('GET /api/v1/sessions', () => {
  it('lists sessions in the documented shape, with filters', async () => {
    await create({ user: 'carol', client_ip: '192.0.2.1' });
    await create({ user: 'carol', client_ip: '192.0.2.2', state: 'deny' });
    const res = await call('GET', '/api/v1/sessions?user=carol');
    assert.equal(res.status, 200);
    assert.equal(res.body.next_cursor, null);
    assert.equal(res.body.sessions.length, 2);
    for (const s of res.body.sessions) {
      assert.deepEqual(Object.keys(s).sort(), [...SESSION_KEYS].sort());
      assert.equal(new Date(s.created_at).toISOString(), s.created_at);
      assert.equal(typeof s.idle_timeout, 'number');
    }
    const denied = await call('GET', '/api/v1/sessions?user=carol&state=deny');
    assert.deepEqual(
      denied.body.sessions.map((s: { client_ip: string }) => s.client_ip),
      ['192.0.2.2'],
    );
    const byIp = await call('GET', '/api/v1/sessions?client_ip=192.0.2.1');
    assert.equal(byIp.body.sessions.length, 1);
    assert.equal(byIp.body.sessions[0].user, 'carol');
  });

  it('pages with limit and cursor', async () => {
    for (let i = 0; i < 5; i++) await create({ user: 'pager' });
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/api/v1/sessions?user=pager&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
      const res = await call('GET', q);
      assert.ok(res.body.sessions.length <= 2);
      ids.push(...res.body.sessions.map((s: { id: string }) => s.id));
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor !== null);
    assert.equal(new Set(ids).size, 5);
    assert.ok(pages >= 3);
  });

  it('refuses malformed filters with 400 naming them', async () => {
    for (const [q, field] of [
      ['state=maybe', 'state'],
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['client_ip=x', 'client_ip'],
      ['colour=red', 'colour'],
    ]) {
      const res = await call('GET', `/api/v1/sessions?${q}`);
      assert.equal(res.status, 400, q);
      assert.ok(res.body.error.message.startsWith(`${field}: `), res.body.error.message);
    }
  });
});

describe('GET /api/v1/sessions/{id}', () => {
  it('shows variables with secure ones masked and the plugins holding cookies', async () => {
    const { id } = await create({ user: 'dave', variables: { 'session.custom.a': '1' } });
    await fx.engine.data.set(id, 'session.logon.last.password', 'hunter2', { secure: true });
    await fx.engine.savePluginState(id, 'otp', { step: 3 });
    const res = await call('GET', `/api/v1/sessions/${id}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.id, id);
    assert.equal(res.body.variables['session.custom.a'], '1');
    assert.equal(res.body.variables['session.logon.last.password'], '********');
    assert.equal(res.body.variables['session.user.sessionid'], id);
    assert.deepEqual(res.body.plugins, ['otp']);
    assert.ok(!JSON.stringify(res.body).includes('hunter2'));
    assert.ok(!JSON.stringify(res.body).includes('"step"'));
  });

  it('404 for an unknown id, 400 for a malformed one or a token', async () => {
    const missing = await call('GET', '/api/v1/sessions/0123456789abcdef0123456789abcdef');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'SG_ERR_SESSION_NOT_FOUND');
    const bad = await call('GET', '/api/v1/sessions/xyz');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'SG_ERR_INVALID_SESSION_ID');
    const { token } = await create();
    const withToken = await call('GET', `/api/v1/sessions/${token}`);
    assert.equal(withToken.status, 400);
    assert.ok(!withToken.body.error.message.includes(token), 'the token is not echoed');
  });
});

describe('PATCH /api/v1/sessions/{id}', () => {
  it('changes the timeouts and returns the session', async () => {
    const { id } = await create({ timeout: 60, lifetime: 600 });
    const res = await call('PATCH', `/api/v1/sessions/${id}`, { timeout: 120 });
    assert.equal(res.status, 200);
    assert.equal(res.body.idle_timeout, 120);
    const rem = await call('PATCH', `/api/v1/sessions/${id}`, { remaining: 30 });
    assert.equal(rem.status, 200);
    const left = Date.parse(rem.body.lifetime_expires_at) - Date.now();
    assert.ok(left > 25_000 && left <= 31_000, String(left));
  });

  it('lifetime with remaining is 400, an empty change is 400, an unknown id 404', async () => {
    const { id } = await create();
    const both = await call('PATCH', `/api/v1/sessions/${id}`, { lifetime: 10, remaining: 10 });
    assert.equal(both.status, 400);
    assert.equal(both.body.error.code, 'SG_ERR_LIFETIME_WITH_REMAINING');
    const empty = await call('PATCH', `/api/v1/sessions/${id}`, {});
    assert.equal(empty.status, 400);
    assert.match(empty.body.error.message, /^body: /);
    const neg = await call('PATCH', `/api/v1/sessions/${id}`, { remaining: -3 });
    assert.equal(neg.status, 400);
    assert.match(neg.body.error.message, /^remaining: /);
    const missing = await call('PATCH', '/api/v1/sessions/0123456789abcdef0123456789abcdef', { timeout: 5 });
    assert.equal(missing.status, 404);
  });
});

describe('DELETE /api/v1/sessions/{id} and ?user=', () => {
  it('kills a session with reason admin_kill (204), then it is gone (404)', async () => {
    const { id, token } = await create({ user: 'erin' });
    const res = await call('DELETE', `/api/v1/sessions/${id}`);
    assert.equal(res.status, 204);
    assert.equal(res.body, undefined);
    assert.equal(await fx.engine.exists(token), false);
    assert.equal((await call('GET', `/api/v1/sessions/${id}`)).status, 404);
    assert.equal((await call('DELETE', `/api/v1/sessions/${id}`)).status, 404);
    await fx.engine.dispatch();
    const close = fx.audit.find((l) => l.event === 'session_close' && l.session_id === id);
    assert.equal(close?.reason, 'admin_kill');
    assert.equal(close?.user, 'erin');
  });

  it('?reason=removed closes with removed; other reasons are 400', async () => {
    const { id } = await create();
    assert.equal((await call('DELETE', `/api/v1/sessions/${id}?reason=logout`)).status, 400);
    assert.equal((await call('DELETE', `/api/v1/sessions/${id}?reason=removed`)).status, 204);
    await fx.engine.dispatch();
    assert.equal(fx.audit.find((l) => l.event === 'session_close' && l.session_id === id)?.reason, 'removed');
  });

  it('DELETE ?user=NAME closes every session of the user and says how many', async () => {
    await create({ user: 'frank' });
    await create({ user: 'frank' });
    await create({ user: 'grace' });
    const res = await call('DELETE', '/api/v1/sessions?user=frank');
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { closed: 2 });
    assert.equal((await fx.engine.listByUser('frank')).length, 0);
    assert.equal((await fx.engine.listByUser('grace')).length, 1);
    assert.deepEqual((await call('DELETE', '/api/v1/sessions?user=nobody')).body, { closed: 0 });
    const missing = await call('DELETE', '/api/v1/sessions');
    assert.equal(missing.status, 400);
    assert.match(missing.body.error.message, /^user: /);
  });
});

describe('variables', () => {
  it('PUT and GET plain, secure and config values', async () => {
    const { id } = await create();
    const base = `/api/v1/sessions/${id}/variables`;
    assert.equal((await call('PUT', `${base}/session.custom.colour`, { value: 'red' })).status, 204);
    assert.deepEqual((await call('GET', `${base}/session.custom.colour`)).body, {
      name: 'session.custom.colour',
      value: 'red',
    });
    assert.deepEqual((await call('GET', `${base}/session.custom.unset`)).body, {
      name: 'session.custom.unset',
      value: null,
    });
    assert.equal(
      (await call('PUT', `${base}/session.custom.pin`, { value: '4321', secure: true })).status,
      204,
    );
    const masked = await call('GET', `${base}/session.custom.pin`);
    assert.equal(masked.status, 403);
    assert.equal(masked.body.error.code, 'SG_ERR_SECURE_FLAG_REQUIRED');
    // In clear only with admin.reveal_secure (test/admin/reveal-secure.test.ts).
    const hidden = await call('GET', `${base}/session.custom.pin?secure=1`);
    assert.equal(hidden.status, 403);
    assert.equal(hidden.body.error.code, 'SG_ERR_SECURE_REVEAL_DISABLED');
    assert.equal((await call('GET', `${base}/inactivity_timeout?config=1`)).body.value, '900');
    const unknownSetting = await call('GET', `${base}/no_such_setting?config=1`);
    assert.equal(unknownSetting.status, 404);
    assert.equal(unknownSetting.body.error.code, 'SG_ERR_UNKNOWN_CONFIG_KEY');
    // The timeout variables change the session.
    assert.equal((await call('PUT', `${base}/session.inactivity_timeout`, { value: '77' })).status, 204);
    assert.equal((await fx.engine.get(id))!.idleTimeout, 77);
  });

  it('refuses bad names, read-only names, bad bodies and both flags with 400; unknown id 404', async () => {
    const { id } = await create();
    const base = `/api/v1/sessions/${id}/variables`;
    const bad = await call('PUT', `${base}/bad name`, { value: 'x' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'SG_ERR_INVALID_VARIABLE_NAME');
    const ro = await call('PUT', `${base}/session.user.sessionid`, { value: 'x' });
    assert.equal(ro.status, 400);
    assert.equal(ro.body.error.code, 'SG_ERR_READ_ONLY_VARIABLE');
    const noValue = await call('PUT', `${base}/session.custom.x`, { secure: true });
    assert.equal(noValue.status, 400);
    assert.match(noValue.body.error.message, /^value: /);
    const notString = await call('PUT', `${base}/session.custom.x`, { value: 3 });
    assert.match(notString.body.error.message, /^value: /);
    const both = await call('GET', `${base}/session.custom.x?secure=1&config=1`);
    assert.equal(both.status, 400);
    const secureTimeout = await call('PUT', `${base}/session.inactivity_timeout`, {
      value: 'soon-secret',
      secure: true,
    });
    assert.equal(secureTimeout.status, 400);
    assert.ok(!JSON.stringify(secureTimeout.body).includes('soon-secret'), 'a secure value is never echoed');
    const gone = '0123456789abcdef0123456789abcdef';
    assert.equal((await call('GET', `/api/v1/sessions/${gone}/variables/session.custom.x`)).status, 404);
    assert.equal(
      (await call('PUT', `/api/v1/sessions/${gone}/variables/session.custom.x`, { value: 'x' })).status,
      404,
    );
  });

  it('audits an admin change by name, never the value', async () => {
    const { id } = await create();
    await call('PUT', `/api/v1/sessions/${id}/variables/session.custom.secret`, {
      value: 'p4ss-w0rd',
      secure: true,
    });
    const line = fx.auditText.find((l) => l.includes('"variable_set"') && l.includes(id))!;
    assert.ok(line);
    assert.ok(!line.includes('p4ss-w0rd'));
    const parsed = JSON.parse(line);
    assert.equal(parsed.name, 'session.custom.secret');
    assert.equal(parsed.secure, true);
    assert.equal(parsed.by, 'admin_api');
  });
});

describe('GET /api/v1/stats', () => {
  it('counts sessions by state and profile, created and closed since start, and the backlog', async () => {
    await fx.engine.dispatch();
    const res = await call('GET', '/api/v1/stats');
    assert.equal(res.status, 200);
    const b = res.body;
    const live = (await fx.engine.list({ limit: 1000 })).sessions;
    assert.equal(b.sessions.active, live.length);
    assert.equal(b.sessions.by_state.allow, live.filter((s) => s.state === 'allow').length);
    assert.equal(b.sessions.by_profile.default, live.length);
    assert.equal(b.sessions.by_profile_complete, true);
    assert.ok(b.created.by_origin.admin_api >= 20);
    assert.equal(b.created.total, b.created.by_origin.admin_api + b.created.by_origin.gateway);
    assert.ok(b.closed.by_reason.admin_kill >= 3);
    assert.equal(b.closed.by_reason.removed, 1);
    assert.equal(b.close_pipeline.backlog, 0);
    assert.equal(b.close_pipeline.stuck, false);
    assert.deepEqual(Object.keys(b.close_pipeline.pending), ['audit']);
  });
});

describe('other paths', () => {
  it('unknown paths are 404, wrong methods 405 with Allow', async () => {
    const unknown = await call('GET', '/api/v1/nope');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'SG_ERR_UNKNOWN_ENDPOINT');
    const wrong = await call('PUT', '/api/v1/sessions');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.body.error.code, 'SG_ERR_METHOD_NOT_ALLOWED');
    assert.equal(wrong.headers.get('allow'), 'GET, POST, DELETE');
    assert.equal((await call('GET', '/nothing-here', undefined, { token: null })).status, 404);
  });

  it('healthz, readyz, metrics and the OpenAPI document need no token', async () => {
    const health = await call('GET', '/healthz', undefined, { token: null });
    assert.deepEqual([health.status, health.body], [200, { status: 'ok' }]);
    const ready = await call('GET', '/readyz', undefined, { token: null });
    assert.equal(ready.status, 200);
    assert.equal(ready.body.status, 'ready');
    const metrics = await fetch(`${fx.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/);
    const doc = await call('GET', '/api/v1/openapi.json', undefined, { token: null });
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, '3.1.0');
  });

  it('the page and its script carry a strict CSP and no-sniff', async () => {
    for (const path of ['/', '/admin.js', '/admin.css']) {
      const res = await fetch(fx.url + path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      await res.text();
    }
  });
});

describe('the web page session (cookie)', () => {
  const page = { 'x-requested-with': 'sessiongate-admin' };

  it('logs in with the token into an HttpOnly SameSite=Strict cookie, and out again', async () => {
    const wrong = await call('POST', '/login', { token: 'nope' }, { token: null, headers: page });
    assert.equal(wrong.status, 401);
    const noHeader = await call('POST', '/login', { token: TOKEN }, { token: null });
    assert.equal(noHeader.status, 403);
    assert.equal(noHeader.body.error.code, 'SG_ERR_CSRF_CHECK_FAILED');
    const ok = await call('POST', '/login', { token: TOKEN }, { token: null, headers: page });
    assert.equal(ok.status, 204);
    const setCookie = ok.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /^sg_admin=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    assert.ok(!setCookie.includes(TOKEN), 'the cookie is not the token');
    const cookie = setCookie.split(';')[0]!;

    const list = await call('GET', '/api/v1/sessions', undefined, { token: null, headers: { cookie } });
    assert.equal(list.status, 200);

    const { id } = await create();
    const forged = await call('DELETE', `/api/v1/sessions/${id}`, undefined, {
      token: null,
      headers: { cookie },
    });
    assert.equal(forged.status, 403, 'a cookie-authenticated change needs X-Requested-With');
    const crossSite = await call('DELETE', `/api/v1/sessions/${id}`, undefined, {
      token: null,
      headers: { cookie, ...page, origin: 'http://evil.example' },
    });
    assert.equal(crossSite.status, 403, 'and the admin origin');
    const killed = await call('DELETE', `/api/v1/sessions/${id}`, undefined, {
      token: null,
      headers: { cookie, ...page },
    });
    assert.equal(killed.status, 204);
    const kill = fx.audit.find((l) => l.event === 'session_kill' && l.session_id === id);
    assert.equal(kill?.by, 'admin_page');

    const out = await call('POST', '/logout', undefined, { token: null, headers: { cookie, ...page } });
    assert.equal(out.status, 204);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal(
      (await call('GET', '/api/v1/sessions', undefined, { token: null, headers: { cookie } })).status,
      401,
    );
  });
});

describe('OpenAPI document', () => {
  it('documents every status the server answered, for every operation, and every operation was exercised', () => {
    const paths = OPENAPI.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>;
    for (const route of API_ROUTES) {
      const key = `${route.method} ${route.path}`;
      const statuses = seen.get(key);
      assert.ok(statuses, `${key} was not exercised`);
      const documented = Object.keys(paths[route.path]![route.method.toLowerCase()]!.responses ?? {});
      for (const status of statuses)
        assert.ok(documented.includes(String(status)), `${key} answered ${status}`);
    }
  });
});

describe('readyz', () => {
  it('fails when the close backlog has not shrunk for the configured time', async () => {
    const clock = new ManualClock(Date.now());
    const own = await startTestAdmin({ clock, stuckAfterSeconds: 60 });
    try {
      // No dispatcher runs in this fixture: the close record stays in the backlog.
      const { id } = await own.engine.create({ state: 'allow' });
      await own.engine.close(id, 'admin_kill');
      const first = await own.call('GET', '/readyz', undefined, { token: null });
      assert.equal(first.status, 200);
      assert.equal(first.body.close_backlog, 1);
      clock.advance(61_000);
      const stuck = await own.call('GET', '/readyz', undefined, { token: null });
      assert.equal(stuck.status, 503);
      assert.equal(stuck.body.close_pipeline_stuck, true);
      await own.engine.dispatch();
      const again = await own.call('GET', '/readyz', undefined, { token: null });
      assert.equal(again.status, 200);
    } finally {
      await own.close();
    }
  });
});
