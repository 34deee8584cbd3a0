import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  base32Decode,
  base32Encode,
  hotp,
  matchTotp,
  timeStep,
  totpCode,
} from '../../src/plugins/builtin/totp-code.js';
import { enrolTotp, UsedSteps } from '../../src/plugins/builtin/totp.js';
import { UsersFileEditor } from '../../src/plugins/builtin/users-file.js';
import { builtinHost, tempDir } from './builtin-helpers.js';

describe('RFC 6238 codes', () => {
  it('matches the RFC test vectors (SHA-1, 8 digits) and base32 round trips', () => {
    const secret = Buffer.from('12345678901234567890');
    const vectors: [number, string][] = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    for (const [t, code] of vectors) assert.equal(hotp(secret, timeStep(t * 1000), 8), code, `T=${t}`);
    assert.equal(base32Encode(secret), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    assert.deepEqual(base32Decode('gezd gnbv gy3t qojq gezd gnbv gy3t qojq'), secret);
    assert.throws(() => base32Decode('GEZ1'), /invalid base32/);
  });

  it('accepts the steps within the window only', () => {
    const s = base32Encode(Buffer.from('12345678901234567890'));
    const now = 1_700_000_000_000;
    assert.equal(matchTotp(s, totpCode(s, now), now), timeStep(now));
    assert.equal(matchTotp(s, totpCode(s, now - 30_000), now), timeStep(now) - 1);
    assert.equal(matchTotp(s, totpCode(s, now + 30_000), now), timeStep(now) + 1);
    assert.equal(matchTotp(s, totpCode(s, now - 60_000), now), undefined);
    assert.equal(matchTotp(s, totpCode(s, now - 60_000), now, 2), timeStep(now) - 2);
    assert.equal(matchTotp(s, '12345', now), undefined);
  });

  it('a step is taken once, also by two stores on the same folder (two processes)', () => {
    const dir = tempDir();
    const a = new UsedSteps(dir);
    const b = new UsedSteps(dir);
    assert.equal(a.claim('alice', 100), true);
    assert.equal(b.claim('alice', 100), false);
    assert.equal(b.claim('alice', 99), false, 'an older step after a newer one');
    assert.equal(b.claim('bob', 100), true, 'per user');
    assert.equal(b.claim('alice', 101), true);
    assert.equal(a.claim('alice', 101), false);
  });
});

describe('totp plugin', () => {
  let t: Awaited<ReturnType<typeof builtinHost>>;
  let dir: string;
  let secret: string;

  before(async () => {
    dir = tempDir();
    t = await builtinHost(
      [
        { name: 'otp', type: 'totp', config: { users_file: 'users.yaml' } },
        { name: 'otp1', type: 'totp', config: { users_file: 'users.yaml', max_attempts: 1 } },
      ],
      { baseDir: dir },
    );
    const ed = UsersFileEditor.open(join(dir, 'users.yaml'));
    ed.set('alice', { groups: [] });
    ed.set('bob', { groups: [] });
    const uri = new URL(enrolTotp(ed, 'alice', t.keyring, 'sessiongate test'));
    ed.save();
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.host, 'totp');
    assert.equal(decodeURIComponent(uri.pathname), '/sessiongate test:alice');
    assert.equal(uri.searchParams.get('digits'), '6');
    assert.equal(uri.searchParams.get('period'), '30');
    secret = uri.searchParams.get('secret')!;
    assert.match(secret, /^[A-Z2-7]{32}$/);
  });
  after(() => t.stop());

  const ask = (plugin: string, id: string, user: string, otp?: string) =>
    t.host.authenticate(plugin, id, {
      gateway_user: user,
      ...(otp === undefined ? {} : { key_value_pairs: { otp } }),
    });

  it('the users file holds the secret sealed, not in base32', () => {
    const text = readFileSync(join(dir, 'users.yaml'), 'utf8');
    assert.ok(!text.includes(secret));
    assert.match(text, /totp: sg1\./);
  });

  it('NEEDINFO first, then ACCEPT for a valid code; the same code again is refused', async () => {
    const id = await t.session();
    const first = await ask('otp', id, 'alice');
    assert.equal(first.verdict, 'NEEDINFO');
    assert.deepEqual(first.question, { key: 'otp', prompt: 'One-time code', disable_echo: true });
    const code = totpCode(secret, Date.now());
    const ok = await ask('otp', id, 'alice', code);
    assert.equal(ok.verdict, 'ACCEPT');
    assert.equal(ok.gateway_user, 'alice');
    assert.equal((await t.host.authorize('otp', id, { gateway_user: 'alice' })).verdict, 'ACCEPT');

    // Replay in another session: refused (asked again while attempts remain, then DENY).
    const other = await t.session();
    const again = await ask('otp', other, 'alice', code);
    assert.equal(again.verdict, 'NEEDINFO');
    assert.equal(again.reason, 'Invalid code');
    assert.equal((await t.host.authorize('otp', other, { gateway_user: 'alice' })).verdict, 'DENY');
    const third = await t.session();
    const replay = await ask('otp1', third, 'alice', code);
    assert.equal(replay.verdict, 'DENY');
  });

  it('wrong codes are counted in the cookie: NEEDINFO until max_attempts, then DENY', async () => {
    const id = await t.session();
    const wrong = String((Number(totpCode(secret, Date.now())) + 500_000) % 1_000_000).padStart(6, '0');
    assert.equal((await ask('otp', id, 'alice', wrong)).verdict, 'NEEDINFO');
    assert.deepEqual((await t.engine.get(id))!.cookies.otp, { attempts: 1 });
    assert.equal((await ask('otp', id, 'alice', 'abc')).verdict, 'NEEDINFO');
    const last = await ask('otp', id, 'alice', wrong);
    assert.equal(last.verdict, 'DENY');
    assert.equal(last.reason, 'Too many failed attempts');
    // Even a valid code is refused once the attempts are used up.
    assert.equal((await ask('otp', id, 'alice', totpCode(secret, Date.now() + 30_000))).verdict, 'DENY');
  });

  it('a user without a secret, or without a name, never passes', async () => {
    const id = await t.session();
    assert.equal((await ask('otp1', id, 'bob', totpCode(secret, Date.now()))).verdict, 'DENY');
    assert.equal((await ask('otp1', await t.session(), 'nobody', '123456')).verdict, 'DENY');
    const noName = await t.host.authenticate('otp', await t.session(), {
      key_value_pairs: { otp: '123456' },
    });
    assert.equal(noName.verdict, 'DENY');
  });

  it('a secret sealed for another user does not open (no copying of totp lines)', async () => {
    const ed = UsersFileEditor.open(join(dir, 'users.yaml'));
    ed.set('bob', { totp: ed.get('alice')!.totp! });
    ed.save();
    const out = await ask('otp', await t.session(), 'bob', totpCode(secret, Date.now() + 30_000));
    assert.equal(out.verdict, 'DENY');
    assert.ok(out.failure, 'the decrypt error is a plugin failure, logged by the host');
  });
});
