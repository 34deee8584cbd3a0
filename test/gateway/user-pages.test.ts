import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from './harness.js';
import { RawConnection } from './raw-connection.js';
import {
  drain,
  logOn,
  post,
  sessionOf,
  sessionsJson,
  startUserPages,
  type UserPagesFixture,
} from './user-pages-support.js';

let t: UserPagesFixture;
before(async () => {
  t = await startUserPages();
});
after(() => t.close());

/** Alice on two browsers, Bob on one. */
async function people(): Promise<{ alice1: Browser; alice2: Browser; bob: Browser }> {
  return {
    alice1: await logOn(t.base, 'alice', 'wonderland', 'Firefox/1 on laptop'),
    alice2: await logOn(t.base, 'alice', 'wonderland', 'Safari/2 on phone'),
    bob: await logOn(t.base, 'bob', 'builder', 'Chrome/3'),
  };
}

describe('user pages: attacks', () => {
  it("answers another user's session id exactly as a session that does not exist (404), and ends nothing", async () => {
    const { alice1, bob } = await people();
    const { csrf } = (await sessionsJson(alice1)).body;
    const bobId = sessionOf(t.fx, bob);
    const theirs = await post(alice1, t.base, '/sg/sessions/end', { csrf, id: bobId });
    const none = await post(alice1, t.base, '/sg/sessions/end', { csrf, id: '0'.repeat(32) });
    const junk = await post(alice1, t.base, '/sg/sessions/end', { csrf, id: 'x' });
    assert.equal(theirs.status, 404);
    assert.deepEqual(theirs.body, none.body);
    assert.deepEqual(junk.body, none.body);
    assert.equal((theirs.body.error as { code: string }).code, 'SG_ERR_SESSION_NOT_FOUND');
    assert.equal((await t.fx.gw.engine.get(bobId))?.state, 'allow', "bob's session lives on");
    // Bob's token as the id (a token is never an id): the same answer.
    const asToken = await post(alice1, t.base, '/sg/sessions/end', { csrf, id: bob.jar.get('MRHSession')! });
    assert.deepEqual(asToken.body, none.body);
  });

  it('refuses a form without its csrf token, or with the token of another session (403), and ends nothing', async () => {
    const { alice1, alice2, bob } = await people();
    const target = sessionOf(t.fx, alice2);
    const missing = await post(alice1, t.base, '/sg/sessions/end', { id: target });
    assert.equal(missing.status, 403);
    assert.equal((missing.body.error as { code: string }).code, 'SG_ERR_CSRF_TOKEN');
    const bobs = (await sessionsJson(bob)).body.csrf;
    const others = (await sessionsJson(alice2)).body.csrf;
    for (const csrf of [bobs, others, 'A'.repeat(43), '']) {
      const wrong = await post(alice1, t.base, '/sg/sessions/end', { id: target, csrf });
      assert.equal(wrong.status, 403, `csrf ${csrf.slice(0, 6)}`);
      assert.equal((wrong.body.error as { code: string }).code, 'SG_ERR_CSRF_TOKEN');
      const all = await post(alice1, t.base, '/sg/sessions/end-others', { csrf });
      assert.equal(all.status, 403);
    }
    assert.equal((await t.fx.gw.engine.get(target))?.state, 'allow');
  });

  it('refuses a cross-origin POST, and one with no Origin at all (403), before reading the form', async () => {
    const { alice1, alice2 } = await people();
    const { csrf } = (await sessionsJson(alice1)).body;
    const target = sessionOf(t.fx, alice2);
    for (const origin of ['http://evil.example', 'null', '']) {
      for (const path of ['/sg/sessions/end', '/sg/sessions/end-others', '/sg/password']) {
        const r = await post(alice1, t.base, path, { csrf, id: target }, origin);
        assert.equal(r.status, 403, `${path} from ${origin || 'no origin'}`);
        assert.equal((r.body.error as { code: string }).code, 'SG_ERR_ORIGIN_MISMATCH');
      }
    }
    assert.equal((await t.fx.gw.engine.get(target))?.state, 'allow');
  });

  it('answers 401 without a signed-in session: no cookie, a logon in progress, an ended session', async () => {
    const { alice1 } = await people();
    const { csrf } = (await sessionsJson(alice1)).body;
    const stranger = await logOn(t.base, 'bob', 'builder', 'x');
    stranger.jar.set('MRHSession', 'A'.repeat(43));
    assert.equal((await sessionsJson(stranger)).status, 401);
    assert.equal((await sessionsJson(stranger)).body.error?.code, 'SG_ERR_NOT_SIGNED_IN');
    const half = await fetch(`${t.base}/`, { headers: { accept: 'text/html' } });
    const cookie = half.headers.getSetCookie()[0]!.split(';')[0]!;
    const inProgress = await fetch(`${t.base}/sg/sessions.json`, { headers: { cookie } });
    assert.equal(inProgress.status, 401);
    // alice's form token with no cookie at all: still 401, nothing ended.
    const anon = await fetch(`${t.base}/sg/sessions/end-others`, {
      method: 'POST',
      body: `csrf=${csrf}`,
      headers: { origin: t.base, 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(anon.status, 401);
  });

  it('answers an oversized form 400 and closes the connection (raw socket): nothing ended, nothing after it read', async () => {
    const { alice1, alice2 } = await people();
    const { csrf } = (await sessionsJson(alice1)).body;
    const other = sessionOf(t.fx, alice2);
    const body = `csrf=${csrf}&id=${other}&pad=${'x'.repeat(20_000)}`;
    const port = Number(new URL(t.base).port);
    const c = await RawConnection.open(port);
    const head =
      `POST /sg/sessions/end HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: ${t.base}\r\n` +
      `Cookie: MRHSession=${alice1.jar.get('MRHSession')!}\r\nAccept: application/json\r\n` +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`;
    await c.write(head + body);
    const r = await c.read(5000);
    assert.equal(r.kind, 'response');
    if (r.kind !== 'response') return;
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('connection'), 'close');
    assert.equal((await c.read(5000)).kind, 'closed');
    c.close();
    assert.equal((await t.fx.gw.engine.get(other))?.state, 'allow');
  });

  it('never shows a session token, in the page or its JSON', async () => {
    const { alice1, alice2 } = await people();
    const tokens = [alice1.jar.get('MRHSession')!, alice2.jar.get('MRHSession')!];
    const html = await (await alice1.fetch('/sg/sessions')).text();
    const json = await (await alice1.fetch('/sg/sessions.json')).text();
    for (const token of tokens) {
      assert.ok(!html.includes(token), 'no token in the page');
      assert.ok(!json.includes(token), 'no token in the JSON');
    }
  });
});

describe('user pages: the sessions of the user', () => {
  it("lists the user's live HTTP and SSH sessions in every profile, this one marked, no one else's", async () => {
    const { alice1, alice2, bob } = await people();
    const engine = t.fx.gw.engine;
    const ssh = await engine.create({
      state: 'allow',
      user: 'alice',
      clientIp: '192.0.2.9',
      variables: {
        'session.server.protocol': 'ssh',
        'session.ssh.target': 'deploy@db1:22',
        'session.ssh.client.software': 'OpenSSH_9.6',
      },
    });
    const sso = await engine.create({ state: 'allow', user: 'alice', profile: 'sso' });
    const { status, body } = await sessionsJson(alice1);
    assert.equal(status, 200);
    assert.equal(body.user, 'alice');
    assert.equal(body.password_change, true);
    const ids = body.sessions.map((s) => s.id);
    for (const id of [sessionOf(t.fx, alice1), sessionOf(t.fx, alice2), ssh.id, sso.id])
      assert.ok(ids.includes(id));
    assert.ok(!ids.includes(sessionOf(t.fx, bob)));
    const current = body.sessions.filter((s) => s.current);
    assert.deepEqual(
      current.map((s) => s.id),
      [sessionOf(t.fx, alice1)],
    );
    assert.equal(body.sessions[0]!.current, true, 'this session first');
    assert.equal(current[0]!.device, 'Firefox/1 on laptop');
    const sshView = body.sessions.find((s) => s.id === ssh.id) as unknown as Record<string, unknown>;
    assert.deepEqual(
      {
        protocol: sshView.protocol,
        device: sshView.device,
        target: sshView.ssh_target,
        ip: sshView.client_ip,
      },
      { protocol: 'ssh', device: 'OpenSSH_9.6', target: 'deploy@db1:22', ip: '192.0.2.9' },
    );
    assert.equal(
      (body.sessions.find((s) => s.id === sso.id) as unknown as { profile: string }).profile,
      'sso',
    );
    assert.equal(sshView.short_id, ssh.id.slice(0, 8));
    assert.match(String(sshView.started), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    await engine.close(ssh.id, 'admin_kill');
    await engine.close(sso.id, 'admin_kill');
  });

  it('renders the page for browsers: this session, UTC times, end buttons, the password form, no script', async () => {
    const { alice1, alice2 } = await people();
    const res = await alice1.fetch('/sg/sessions');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = await res.text();
    assert.match(html, /<strong>This session<\/strong>/);
    assert.match(html, /<time datetime="\d{4}-[^"]+Z" title="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/time>/);
    assert.ok(html.includes(`End session ${sessionOf(t.fx, alice2).slice(0, 8)}`));
    assert.match(html, /End all other sessions/);
    assert.match(html, /name="current_password"/);
    assert.doesNotMatch(html, /<script/);
  });

  it('ends one other session (user_ended, audited with the actor), whose browser then gets the logon page', async () => {
    const { alice1, alice2 } = await people();
    const { csrf } = (await sessionsJson(alice1)).body;
    const me = sessionOf(t.fx, alice1);
    const other = sessionOf(t.fx, alice2);
    const res = await alice1.form('/sg/sessions/end', { csrf, id: other });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/sg/sessions?done=ended');
    assert.match(await (await alice1.fetch('/sg/sessions?done=ended')).text(), /The session was ended\./);
    assert.equal(await t.fx.gw.engine.get(other), null);
    const next = await alice2.fetch('/app');
    assert.equal(next.status, 200);
    assert.match(await next.text(), /name="password"/, 'the logon form');
    await drain(t.fx);
    assert.deepEqual(t.closes.get(other), ['user_ended']);
    const line = t.audit.find((e) => e.event === 'session_ended_by_user' && e.sessionId === other);
    assert.deepEqual(
      { user: line?.user, actor: line?.actor, protocol: line?.protocol },
      { user: 'alice', actor: me, protocol: 'http' },
    );
    assert.equal((await t.fx.gw.engine.get(me))?.state, 'allow');
  });

  it('ends all other sessions (HTTP and SSH) and keeps this one; API clients get a count', async () => {
    const { alice1, alice2, bob } = await people();
    const ssh = await t.fx.gw.engine.create({
      state: 'allow',
      user: 'alice',
      variables: { 'session.server.protocol': 'ssh', 'session.ssh.target': 'u@h:22' },
    });
    const { csrf } = (await sessionsJson(alice1)).body;
    const r = await post(alice1, t.base, '/sg/sessions/end-others', { csrf });
    assert.equal(r.status, 200);
    assert.ok((r.body.ended as number) >= 2);
    assert.equal(await t.fx.gw.engine.get(ssh.id), null);
    assert.equal(await t.fx.gw.engine.get(sessionOf(t.fx, alice2)), null);
    assert.equal((await t.fx.gw.engine.get(sessionOf(t.fx, bob)))?.state, 'allow', "bob's is not hers");
    const left = (await sessionsJson(alice1)).body.sessions;
    assert.deepEqual(
      left.map((s) => s.current),
      [true],
    );
    await drain(t.fx);
    assert.deepEqual(t.closes.get(ssh.id), ['user_ended']);
  });

  it('ending this session itself is a logout: the cookie is cleared', async () => {
    const { alice1 } = await people();
    const { csrf } = (await sessionsJson(alice1)).body;
    const me = sessionOf(t.fx, alice1);
    const r = await post(alice1, t.base, '/sg/sessions/end', { csrf, id: me });
    assert.equal(r.status, 200);
    assert.match(r.res.headers.get('set-cookie') ?? '', /MRHSession=;.*Max-Age=0/);
    assert.equal(await t.fx.gw.engine.get(me), null);
  });

  it('refuses other methods with 405', async () => {
    const { alice1 } = await people();
    assert.equal((await alice1.fetch('/sg/sessions/end')).status, 405);
    assert.equal(
      (await alice1.fetch('/sg/sessions', { method: 'POST', headers: { origin: t.base } })).status,
      405,
    );
  });
});
