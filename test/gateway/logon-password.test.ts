import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { totpCode } from '../../src/plugins/builtin/totp-code.js';
import { enrolTotp } from '../../src/plugins/builtin/totp.js';
import { UsersFileEditor } from '../../src/plugins/builtin/users-file.js';
import { Keyring } from '../../src/session/keyring.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

// The logon password is a secure variable only while the access policy may still need it: here
// the users plugin checks it after a one-time code question, in a later request. When the
// policy ends it is deleted, unless the profile says keep_password: true.

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - { name: otp, runtime: builtin, type: totp, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [logon, { authenticate: otp }, { authenticate: users }, allow]
  kept:
    cookie: { name: KeptSession }
    keep_password: true
    policy: [logon, { authenticate: users }, allow]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /kept }, upstream: \${UPSTREAM}, profile: kept }
`;

const PASSWORD = 'session.logon.last.password';
let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let secret: string;

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  const editor = UsersFileEditor.open(join(fx.dir, 'users.yaml'));
  const uri = enrolTotp(editor, 'alice', Keyring.loadOrCreate(join(fx.dir, 'keyring.json')), 'sg-test');
  secret = new URL(uri).searchParams.get('secret')!;
  editor.save();
});
after(async () => {
  await fx.close();
  await upstream.close();
});

/** The session behind the browser's cookie, as the store has it. */
async function sessionOf(b: Browser, cookie: string) {
  const id = fx.gw.engine.sid(b.jar.get(cookie)!);
  return { id, record: await fx.gw.engine.get(id) };
}

describe('the logon password in the session', () => {
  it('is kept (sealed) while the policy runs and deleted when it ends', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/app');
    const question = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(question.status, 200, 'the one-time code is asked first');
    const during = await sessionOf(b, 'MRHSession');
    assert.equal(during.record?.state, 'inprogress');
    assert.equal(await fx.gw.engine.data.get(during.id, PASSWORD, { secure: true }), 'wonderland');

    // The users plugin runs after the answer, in this later request, and still gets it.
    const done = await b.form('/sg/logon', { question: 'otp', answer: totpCode(secret, Date.now()) });
    assert.equal(done.status, 302);
    const allowed = await sessionOf(b, 'MRHSession');
    assert.equal(allowed.record?.state, 'allow');
    assert.equal(allowed.record?.user, 'alice');
    assert.ok(!Object.hasOwn(allowed.record!.secure, PASSWORD), 'no sealed password in the record');
    assert.equal(await fx.gw.engine.data.get(allowed.id, PASSWORD, { secure: true }), undefined);
    assert.equal(await fx.gw.engine.data.get(allowed.id, 'session.logon.last.username'), 'alice');
    assert.equal((await b.fetch('/app')).status, 200);
  });

  it('stays for the whole session with keep_password: true', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/kept/x');
    const done = await b.form('/sg/logon', { username: 'bob', password: 'builder' });
    assert.equal(done.status, 302);
    const allowed = await sessionOf(b, 'KeptSession');
    assert.equal(allowed.record?.state, 'allow');
    assert.equal(await fx.gw.engine.data.get(allowed.id, PASSWORD, { secure: true }), 'builder');
  });
});
