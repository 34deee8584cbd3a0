import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PluginHost } from '../../src/plugins/host.js';
import { ProcessRuntime } from '../../src/plugins/runtimes/process.js';
import { SpsPythonRuntime } from '../../src/plugins/runtimes/sps-python.js';
import type { PluginRuntime } from '../../src/plugins/runtime.js';
import { testEngine } from '../session/helpers.js';
import { recordingLogger } from './helpers.js';

const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
const hosts: PluginHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
});

type Logger = ReturnType<typeof recordingLogger>;

async function setup(make: (logger: Logger) => PluginRuntime) {
  const logger = recordingLogger();
  const { engine } = testEngine({ logger });
  const host = new PluginHost(engine, [{ name: 'p', runtime: make(logger), timeoutMs: 5000 }], logger);
  hosts.push(host);
  const { id } = await engine.create();
  const act = (value: unknown) => JSON.stringify({ do: 'result', value });
  const authenticate = (value: unknown) =>
    host.authenticate('p', id, { key_value_pairs: { act: act(value) } });
  const passwords = (value: unknown) => host.getPasswordList('p', id, { server_username: act(value) });
  const keys = (value: unknown) => host.getPrivateKeyList('p', id, { server_username: act(value) });
  const cookie = async () => (await engine.get(id))?.cookies.p;
  const reasons = () =>
    logger.lines
      .filter((l) => l.level === 'warn' && l.fields.failure === 'malformed')
      .map((l) => l.fields.error);
  return { authenticate, passwords, keys, cookie, reasons };
}

const processAa = (logger: Logger) =>
  new ProcessRuntime('aa', 'p', [process.execPath, fixture('process-fuzz.mjs')], {}, logger);
const processVault = (logger: Logger) =>
  new ProcessRuntime('credentialstore', 'p', [process.execPath, fixture('process-fuzz.mjs')], {}, logger);

const accept = { verdict: 'ACCEPT', cookie: { stored: true } };
const BAD_AA: [string, Record<string, unknown>, RegExp][] = [
  ['gateway_user with CR LF', { ...accept, gateway_user: 'alice\r\nX-Admin: 1' }, /gateway_user/],
  ['gateway_user with a space', { ...accept, gateway_user: 'alice bob' }, /gateway_user/],
  ['gateway_user with a trailing LF', { ...accept, gateway_user: 'alice\n' }, /gateway_user/],
  ['gateway_user empty', { ...accept, gateway_user: '' }, /gateway_user/],
  ['gateway_user with a bidi override', { ...accept, gateway_user: 'ali\u202Ece' }, /gateway_user/],
  ['gateway_user a number', { ...accept, gateway_user: 7 }, /gateway_user/],
  [
    'additional_metadata an object',
    { ...accept, additional_metadata: { mail: 'a@b' } },
    /additional_metadata/,
  ],
  ['gateway_groups with a comma', { ...accept, gateway_groups: ['a,b'] }, /gateway_groups/],
  ['gateway_groups with a newline', { ...accept, gateway_groups: ['ops\nadmins'] }, /gateway_groups/],
  ['gateway_groups a string', { ...accept, gateway_groups: 'ops' }, /gateway_groups/],
  ['reason an object', { verdict: 'DENY', reason: { why: 1 }, cookie: { stored: true } }, /reason/],
  ['verdict in lower case', { verdict: 'accept', cookie: { stored: true } }, /verdict/],
  [
    'question key with a space',
    { verdict: 'NEEDINFO', question: { key: 'one time', prompt: 'Code' }, cookie: { stored: true } },
    /question\.key/,
  ],
  [
    'question prompt with a newline',
    { verdict: 'NEEDINFO', question: { key: 'otp', prompt: 'Code\n<b>' }, cookie: { stored: true } },
    /question\.prompt/,
  ],
  [
    'disable_echo a string',
    {
      verdict: 'NEEDINFO',
      question: { key: 'otp', prompt: 'Code', disable_echo: 'no' },
      cookie: { stored: true },
    },
    /disable_echo/,
  ],
  [
    'question otpauth not an otpauth://totp/ URI',
    {
      verdict: 'NEEDINFO',
      question: { key: 'otp', prompt: 'Code', otpauth: 'https://evil.example/x' },
      cookie: { stored: true },
    },
    /question\.otpauth/,
  ],
  [
    'question otpauth with a space',
    {
      verdict: 'NEEDINFO',
      question: { key: 'otp', prompt: 'Code', otpauth: 'otpauth://totp/a b?secret=AAAA' },
      cookie: { stored: true },
    },
    /question\.otpauth/,
  ],
];

describe('plugin results are checked against the documented types (process runtime)', () => {
  it('each malformed aa result is DENY, its reason logged, its cookie not stored', async () => {
    const t = await setup(processAa);
    for (const [what, value, field] of BAD_AA) {
      const out = await t.authenticate(value);
      assert.deepEqual(out, { verdict: 'DENY', failure: 'malformed' }, what);
      assert.match(String(t.reasons().at(-1)), field, what);
      assert.deepEqual(await t.cookie(), {}, `${what}: cookie unchanged`);
    }
    assert.equal(t.reasons().length, BAD_AA.length);
  });

  it('well-formed names pass: user@domain, DOMAIN\\user, groups with spaces, metadata as JSON text', async () => {
    const t = await setup(processAa);
    for (const user of ['alice@corp.example', 'CORP\\alice', 'ålice']) {
      const out = await t.authenticate({ ...accept, gateway_user: user, gateway_groups: ['Domain Admins'] });
      assert.equal(out.verdict, 'ACCEPT', user);
      assert.equal(out.gateway_user, user);
    }
    const out = await t.authenticate({ ...accept, additional_metadata: '{"mail":"a@b"}', reason: 'ok' });
    assert.equal(out.additional_metadata, '{"mail":"a@b"}');
    assert.deepEqual(await t.cookie(), { stored: true });
  });

  it('credential-store results: a malformed list gives no credentials, logged; the host never throws', async () => {
    const t = await setup(processVault);
    assert.deepEqual(await t.passwords({ passwords: [1], cookie: { stored: true } }), []);
    assert.deepEqual(await t.passwords({ passwords: 'pw' }), []);
    assert.deepEqual(await t.keys({ private_keys: [['ssh rsa', 'PEM']] }), []);
    assert.deepEqual(await t.keys({ private_keys: [['ssh-rsa']] }), []);
    assert.equal(t.reasons().length, 4);
    assert.deepEqual(await t.cookie(), {}, 'cookie of a malformed result not stored');
    assert.deepEqual(await t.passwords({ passwords: ['s3cret'], cookie: { stored: true } }), ['s3cret']);
    assert.deepEqual(await t.keys({ private_keys: [['ssh-ed25519', 'PEM']] }), [['ssh-ed25519', 'PEM']]);
  });
});

describe('plugin results are checked (sps-python runtime)', () => {
  it('gateway_user with CR LF and metadata as a dict are DENY; a bad password list gives none', async () => {
    const aa = await setup((logger) => new SpsPythonRuntime(fixture('py-fuzz'), 'p', '', logger));
    assert.equal((await aa.authenticate({ verdict: 'ACCEPT', gateway_user: 'a\r\nb' })).failure, 'malformed');
    assert.equal(
      (await aa.authenticate({ verdict: 'ACCEPT', additional_metadata: {} })).failure,
      'malformed',
    );
    assert.equal((await aa.authenticate({ verdict: 'ACCEPT', gateway_user: 'alice' })).verdict, 'ACCEPT');
    const vault = await setup((logger) => new SpsPythonRuntime(fixture('py-fuzz-vault'), 'p', '', logger));
    assert.deepEqual(await vault.passwords({ passwords: [None()] }), []);
    assert.equal(vault.reasons().length, 1);
  });
});

/** JSON null inside a list: Python's None. */
function None(): null {
  return null;
}
