import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { accessProfile } from '../../src/session/profile.js';
import { testEngine } from './helpers.js';

describe('create', () => {
  it('returns a 256-bit token and the id derived from it', async () => {
    const { engine } = testEngine();
    const { id, token } = await engine.create({ state: 'allow' });
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(engine.sid(token), id);
  });

  it('applies the profile defaults and sets the standard variables', async () => {
    const { engine, clock } = testEngine();
    const { id } = await engine.create({ clientIp: '192.168.255.4' });
    const s = await engine.get(id);
    assert.equal(s?.state, 'inprogress');
    assert.equal(s?.idleTimeout, 900);
    assert.equal(s?.lifetime, 604_800);
    assert.equal(s?.policyDeadline, clock.now() + 300_000);
    assert.equal(await engine.data.get(id, 'session.user.clientip'), '192.168.255.4');
    assert.equal(await engine.data.get(id, 'session.user.sessionid'), id);
    assert.equal(await engine.data.get(id, 'session.user.starttime'), String(Math.floor(clock.now() / 1000)));
    assert.equal(await engine.data.get(id, 'session.policy.result'), undefined);
  });

  it('0 disables the idle timeout and the lifetime', async () => {
    const { engine, clock } = testEngine();
    const { id, token } = await engine.create({ timeout: 0, lifetime: 0, state: 'allow' });
    clock.advance(10 * 365 * 86_400_000);
    assert.equal((await engine.validate(token)).valid, true);
    assert.equal(await engine.sweep(), 0);
    assert.ok(await engine.get(id));
  });

  it('refuses negative or fractional timeouts with SG_ERR_INVALID_TIMEOUT', async () => {
    const { engine } = testEngine();
    await assert.rejects(engine.create({ timeout: -1 }), { code: 'SG_ERR_INVALID_TIMEOUT' });
    await assert.rejects(engine.create({ lifetime: 1.5 }), { code: 'SG_ERR_INVALID_TIMEOUT' });
    await assert.rejects(engine.create({ state: 'bogus' as never }), { code: 'SG_ERR_INVALID_STATE' });
  });
});

describe('tokens and ids are not interchangeable', () => {
  it('exists refuses an id; admin verbs refuse a token', async () => {
    const { engine } = testEngine();
    const { id, token } = await engine.create({ state: 'allow' });
    await assert.rejects(engine.exists(id), { code: 'SG_ERR_INVALID_TOKEN' });
    await assert.rejects(engine.data.get(token, 'x'), { code: 'SG_ERR_INVALID_SESSION_ID' });
    await assert.rejects(engine.remove(token), { code: 'SG_ERR_INVALID_SESSION_ID' });
    await assert.rejects(engine.modify(token as never, { timeout: 1 }), {
      code: 'SG_ERR_INVALID_SESSION_ID',
    });
    assert.deepEqual(await engine.validate(id), { valid: false, reason: 'malformed' });
    assert.equal(await engine.exists(token), true);
  });
});

describe('exists', () => {
  it('checks the state and never touches the session', async () => {
    const { engine, clock } = testEngine();
    const { id, token } = await engine.create({ state: 'allow', timeout: 60 });
    const before = await engine.get(id);
    clock.advance(30_000);
    assert.equal(await engine.exists(token, { state: 'allow' }), true);
    assert.equal(await engine.exists(token, { state: 'deny' }), false);
    assert.equal(await engine.exists(token, { state: 'inprogress' }), false);
    assert.deepEqual(await engine.get(id), before, 'no touch, no version change');
    clock.advance(30_000);
    assert.equal(await engine.exists(token), false, 'idle timeout reached');
  });

  it('is false for a well-formed token of no session', async () => {
    const { engine } = testEngine();
    const other = testEngine().engine;
    const { token } = await other.create();
    assert.equal(await engine.exists(token), false);
  });
});

describe('validate', () => {
  it('touches the idle timer, coalescing touches inside the resolution', async () => {
    const { engine, clock } = testEngine({ touchResolutionMs: 1000 });
    const { id, token } = await engine.create({ state: 'allow', timeout: 10 });
    clock.advance(400);
    await engine.validate(token);
    assert.equal((await engine.get(id))?.version, 1, 'inside the resolution: no write');
    clock.advance(9000);
    const r = await engine.validate(token);
    assert.equal(r.valid, true);
    assert.equal(r.valid && r.session.lastAccessAt, clock.now());
    clock.advance(9999);
    assert.equal((await engine.validate(token)).valid, true, 'idle timer restarted at the last touch');
  });

  it('closes an idle session with idle_timeout and a lifetime one with lifetime_expired', async () => {
    const { engine, clock } = testEngine();
    const idle = await engine.create({ state: 'allow', timeout: 60, lifetime: 0 });
    const life = await engine.create({ state: 'allow', timeout: 0, lifetime: 120 });
    clock.advance(60_000);
    assert.deepEqual(await engine.validate(idle.token), {
      valid: false,
      reason: 'expired',
      closedWith: 'idle_timeout',
    });
    assert.equal((await engine.validate(life.token)).valid, true);
    clock.advance(60_000);
    assert.deepEqual(await engine.validate(life.token), {
      valid: false,
      reason: 'expired',
      closedWith: 'lifetime_expired',
    });
    assert.deepEqual(await engine.validate(life.token), { valid: false, reason: 'missing' });
  });

  it('the lifetime is absolute: activity does not extend it', async () => {
    const { engine, clock } = testEngine();
    const { token } = await engine.create({ state: 'allow', timeout: 30, lifetime: 100 });
    for (let i = 0; i < 3; i++) {
      clock.advance(25_000);
      assert.equal((await engine.validate(token)).valid, true);
    }
    clock.advance(24_000);
    assert.equal((await engine.validate(token)).valid, true, 't=99 s, touched at 75 s');
    clock.advance(1000);
    assert.deepEqual(await engine.validate(token), {
      valid: false,
      reason: 'expired',
      closedWith: 'lifetime_expired',
    });
  });
});

describe('peek', () => {
  it('reads like validate without touching; says when validate would touch; closes what expired', async () => {
    const { engine, clock } = testEngine();
    const { id, token } = await engine.create({ state: 'allow', timeout: 60 });
    const t0 = (await engine.get(id))!.lastAccessAt;
    const fresh = await engine.peek(token);
    assert.ok(fresh.valid && !fresh.touchDue && fresh.session.id === id);
    clock.advance(1_000);
    const due = await engine.peek(token);
    assert.ok(due.valid && due.touchDue);
    assert.equal((await engine.get(id))!.lastAccessAt, t0, 'peek does not touch');
    clock.advance(60_000);
    assert.deepEqual(await engine.peek(token), {
      valid: false,
      reason: 'expired',
      closedWith: 'idle_timeout',
    });
    assert.equal(await engine.store.get(id), null, 'closed, as validate would');
    assert.deepEqual(await engine.peek('junk'), { valid: false, reason: 'malformed' });
    assert.deepEqual(await engine.peek(token), { valid: false, reason: 'missing' });
  });
});

describe('modify', () => {
  it('changes the idle timeout and the lifetime (from creation)', async () => {
    const { engine, clock } = testEngine();
    const { id } = await engine.create({ state: 'allow', timeout: 900, lifetime: 0 });
    clock.advance(10_000);
    const s = await engine.modify(id, { timeout: 60, lifetime: 100 });
    assert.equal(s.idleTimeout, 60);
    assert.equal(s.lifetime, 100);
    assert.equal(s.lifetimeDeadline, s.createdAt + 100_000);
    assert.equal(s.expiresAt, s.lastAccessAt + 60_000);
  });

  it('remaining sets the deadline to now + remaining', async () => {
    const { engine, clock } = testEngine();
    const { id, token } = await engine.create({ state: 'allow', timeout: 0, lifetime: 0 });
    clock.advance(50_000);
    const s = await engine.modify(id, { remaining: 30 });
    assert.equal(s.lifetimeDeadline, clock.now() + 30_000);
    assert.equal(s.lifetime, 80);
    clock.advance(29_999);
    assert.equal(await engine.exists(token), true);
    clock.advance(1);
    assert.equal(await engine.exists(token), false);
  });

  it('lifetime with remaining is SG_ERR_LIFETIME_WITH_REMAINING and changes nothing', async () => {
    const { engine } = testEngine();
    const { id } = await engine.create({ state: 'allow' });
    const before = await engine.get(id);
    await assert.rejects(engine.modify(id, { lifetime: 10, remaining: 10 }), {
      code: 'SG_ERR_LIFETIME_WITH_REMAINING',
    });
    assert.deepEqual(await engine.get(id), before);
  });

  it('an unknown id is SG_ERR_SESSION_NOT_FOUND', async () => {
    const { engine } = testEngine();
    await assert.rejects(engine.modify('0'.repeat(32), { timeout: 5 }), { code: 'SG_ERR_SESSION_NOT_FOUND' });
    await assert.rejects(engine.modify('0'.repeat(32), { remaining: 5 }), {
      code: 'SG_ERR_SESSION_NOT_FOUND',
    });
  });
});

describe('data get/set', () => {
  it('unset reads are undefined; set without value is the empty string', async () => {
    const { engine } = testEngine();
    const { id } = await engine.create();
    assert.equal(await engine.data.get(id, 'session.custom.none'), undefined);
    await engine.data.set(id, 'session.custom.flag');
    assert.equal(await engine.data.get(id, 'session.custom.flag'), '');
  });

  it('never resolves names from Object.prototype', async () => {
    const { engine } = testEngine();
    const { id } = await engine.create();
    assert.equal(await engine.data.get(id, 'toString'), undefined);
    assert.equal(await engine.data.get(id, 'constructor'), undefined);
    await assert.rejects(engine.data.get(id, 'constructor', { config: true }), {
      code: 'SG_ERR_UNKNOWN_CONFIG_KEY',
    });
  });

  it('secure values are encrypted at rest and need the secure flag', async () => {
    const { engine } = testEngine();
    const { id } = await engine.create();
    await engine.data.set(id, 'session.logon.last.password', 'hunter2', { secure: true });
    const raw = await engine.store.get(id);
    assert.equal(JSON.stringify(raw).includes('hunter2'), false, 'plaintext is not stored');
    assert.match(raw!.secure['session.logon.last.password']!, /^sg1\./);
    assert.equal(await engine.data.get(id, 'session.logon.last.password', { secure: true }), 'hunter2');
    await assert.rejects(engine.data.get(id, 'session.logon.last.password'), {
      code: 'SG_ERR_SECURE_FLAG_REQUIRED',
    });
  });

  it('a sealed value moved to another session does not decrypt (bound to the id)', async () => {
    const { engine } = testEngine();
    const a = await engine.create();
    const b = await engine.create();
    await engine.data.set(a.id, 'x.secret', 'v', { secure: true });
    const sealed = (await engine.store.get(a.id))!.secure['x.secret']!;
    await engine.store.update(b.id, { setSecure: { 'x.secret': sealed } }, { now: engine.clock.now() });
    await assert.rejects(engine.data.get(b.id, 'x.secret', { secure: true }), { code: 'SG_ERR_DECRYPT' });
  });

  it('config reads the effective profile configuration', async () => {
    const profile = accessProfile('strict', { inactivityTimeout: 300, extra: { logout_uri: '/bye' } });
    const { engine } = testEngine({ profiles: [profile] });
    const { id } = await engine.create({ profile: 'strict' });
    assert.equal(await engine.data.get(id, 'inactivity_timeout', { config: true }), '300');
    assert.equal(await engine.data.get(id, 'logout_uri', { config: true }), '/bye');
    await engine.modify(id, { timeout: 42 });
    assert.equal(await engine.data.get(id, 'session.inactivity_timeout', { config: true }), '42');
    await assert.rejects(engine.data.get(id, 'nope', { config: true }), {
      code: 'SG_ERR_UNKNOWN_CONFIG_KEY',
    });
  });

  it('setting session.inactivity_timeout / max_session_timeout changes the timeouts', async () => {
    const { engine, clock } = testEngine();
    const { id, token } = await engine.create({ timeout: 900, lifetime: 0 });
    await engine.data.set(id, 'session.inactivity_timeout', '20');
    await engine.data.set(id, 'session.max_session_timeout', '3600');
    const s = await engine.get(id);
    assert.equal(s?.idleTimeout, 20);
    assert.equal(s?.lifetimeDeadline, s!.createdAt + 3_600_000);
    assert.equal(await engine.data.get(id, 'session.inactivity_timeout'), '20');
    assert.equal(await engine.data.get(id, 'session.max_session_timeout'), '3600');
    await assert.rejects(engine.data.set(id, 'session.inactivity_timeout', 'soon'), {
      code: 'SG_ERR_INVALID_TIMEOUT',
    });
    clock.advance(20_000);
    assert.equal(await engine.exists(token), false);
  });

  it('refuses bad names, non-string values and the read-only id variable', async () => {
    const { engine } = testEngine();
    const { id } = await engine.create();
    await assert.rejects(engine.data.set(id, 'bad name', 'x'), { code: 'SG_ERR_INVALID_VARIABLE_NAME' });
    await assert.rejects(engine.data.set(id, 'a..b', 'x'), { code: 'SG_ERR_INVALID_VARIABLE_NAME' });
    await assert.rejects(engine.data.set(id, 'k', 5 as never), { code: 'SG_ERR_INVALID_VALUE' });
    await assert.rejects(engine.data.set(id, 'session.user.sessionid', 'x'), {
      code: 'SG_ERR_READ_ONLY_VARIABLE',
    });
  });
});

describe('policy, users and rotation', () => {
  it('completePolicy sets the state and session.policy.result and ends the policy timer', async () => {
    const { engine, clock } = testEngine();
    const { id, token } = await engine.create({ timeout: 900 });
    const s = await engine.completePolicy(id, 'allow');
    assert.equal(s.policyDeadline, null);
    assert.equal(await engine.data.get(id, 'session.policy.result'), 'allowed');
    clock.advance(301_000);
    assert.equal(await engine.exists(token, { state: 'allow' }), true);
  });

  it('an in-progress session ends at the access-policy timeout', async () => {
    const { engine, clock } = testEngine();
    const { token } = await engine.create({ timeout: 900 });
    clock.advance(300_000);
    assert.deepEqual(await engine.validate(token), {
      valid: false,
      reason: 'expired',
      closedWith: 'policy_timeout',
    });
  });

  it('setUser applies the per-user limit, evicting the oldest', async () => {
    const profile = accessProfile('default', { maxSessionsPerUser: 2 });
    const { engine, clock } = testEngine({ profiles: [profile] });
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const { id } = await engine.create({ state: 'allow' });
      clock.advance(1000);
      ids.push(id);
      await engine.setUser(id, 'alice');
    }
    assert.equal(await engine.get(ids[0]!), null);
    assert.deepEqual(
      (await engine.listByUser('alice')).map((s) => s.id),
      [ids[1], ids[2]],
    );
  });

  it('rotate gives a new token and id, keeps the data, and kills the old token', async () => {
    const { engine } = testEngine();
    const old = await engine.create({ state: 'allow' });
    await engine.data.set(old.id, 'session.logon.last.password', 'pw', { secure: true });
    await engine.data.set(old.id, 'session.custom.a', 'b');
    const fresh = await engine.rotate(old.id);
    assert.notEqual(fresh.id, old.id);
    assert.equal(await engine.exists(old.token), false);
    assert.equal(await engine.exists(fresh.token), true);
    assert.equal(await engine.data.get(fresh.id, 'session.custom.a'), 'b');
    assert.equal(await engine.data.get(fresh.id, 'session.logon.last.password', { secure: true }), 'pw');
    assert.equal(await engine.data.get(fresh.id, 'session.user.sessionid'), fresh.id);
  });
});

describe('memory layout', () => {
  it('variables of the same keys share one hidden class however many sessions there are', () => {
    // V8 tells through a natives-syntax call, so this runs in a child with the flag.
    const out = execFileSync(
      process.execPath,
      [
        '--allow-natives-syntax',
        '--import',
        'tsx',
        new URL('./fixtures/hidden-classes.ts', import.meta.url).pathname,
      ],
      { encoding: 'utf8' },
    );
    const seen = JSON.parse(out) as Record<string, boolean>;
    assert.deepEqual(
      { ...seen, spread: undefined },
      { merged: true, spread: undefined, created: true, patched: true },
    );
  });

  it('mergeStrings: later sources win, removed keys stay out, __proto__ is a plain key', async () => {
    const { mergeStrings, mergeWithout } = await import('../../src/core/session-types.js');
    assert.deepEqual(mergeStrings({ a: '1', b: '2' }, undefined, { b: '3' }), { a: '1', b: '3' });
    assert.deepEqual(mergeWithout(new Set(['a']), { a: '1', b: '2' }, { a: '9', c: '3' }), {
      b: '2',
      c: '3',
    });
    const proto = mergeStrings(JSON.parse('{"__proto__":"x"}') as Record<string, string>);
    assert.equal(Object.getPrototypeOf(proto), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value, 'x');
  });
});
