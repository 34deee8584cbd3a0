import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { escapeDnValue, escapeFilterValue, firstRdnValue } from '../../src/plugins/builtin/ldap.js';
import { BASE_DN, freePort, slapdRequired, slapdSkip, startSlapd, type Slapd } from '../support/slapd.js';
import { builtinHost, tempDir } from './builtin-helpers.js';

describe('ldap escaping', () => {
  it('escapes DN and filter values and reads the first RDN of a DN', () => {
    assert.equal(escapeDnValue('a,b+c"d\\e<f>g;h=i'), 'a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i');
    assert.equal(escapeDnValue(' #x '), '\\ #x\\ ');
    assert.equal(escapeFilterValue('*)(uid=*'), '\\2a\\29\\28uid=\\2a');
    assert.equal(escapeFilterValue('a\\b'), 'a\\5cb');
    assert.equal(firstRdnValue('cn=admins,ou=groups,dc=example,dc=org'), 'admins');
    assert.equal(firstRdnValue('cn=R\\2CD\\, team,ou=groups'), 'R,D, team');
  });
});

const skip = slapdRequired() ? false : slapdSkip();

describe('ldap plugin against a real slapd', { skip }, () => {
  let server: Slapd;
  let t: Awaited<ReturnType<typeof builtinHost>>;
  const people = `ou=people,${BASE_DN}`;

  before(async () => {
    server = await startSlapd({ tls: true });
    const common = { url: server.url, attributes: ['mail', 'displayName', 'lastLogon'], timeout_ms: 3000 };
    t = await builtinHost(
      [
        { name: 'direct', type: 'ldap', config: { ...common, user_dn: `uid={user},${people}` } },
        {
          name: 'search',
          type: 'ldap',
          config: {
            ...common,
            search_base: people,
            bind_dn: `cn=reader,${BASE_DN}`,
            bind_password: 'reader-pw',
            group_search_base: `ou=groups,${BASE_DN}`,
            require_groups: ['admins'],
          },
        },
        {
          name: 'tls',
          type: 'ldap',
          config: { ...common, user_dn: `uid={user},${people}`, starttls: true, ca_file: server.caFile! },
        },
        // No ca_file: the test CA is not trusted, so StartTLS must fail.
        {
          name: 'untrusted',
          type: 'ldap',
          config: { ...common, user_dn: `uid={user},${people}`, starttls: true },
        },
      ],
      { baseDir: tempDir() },
    );
  });
  after(async () => {
    await t?.stop();
    await server?.stop();
  });

  const login = async (plugin: string, user: string, password: string) => {
    const id = await t.session();
    const out = await t.host.authenticate(plugin, id, { gateway_user: user, key_value_pairs: { password } });
    return { id, out };
  };

  it('direct bind: ACCEPT with attributes (metadata and session cookie) and memberOf groups', async () => {
    const { id, out } = await login('direct', 'alice', 'alice-pw');
    assert.equal(out.verdict, 'ACCEPT', JSON.stringify(out));
    assert.equal(out.gateway_user, 'alice');
    assert.deepEqual([...out.gateway_groups!].sort(), ['admins', 'ops']);
    const attrs = {
      mail: 'alice@example.org',
      displayName: 'Alice Example',
      lastLogon: '133500000000000000',
    };
    assert.deepEqual(JSON.parse(out.additional_metadata!), attrs);
    const session = (await t.engine.get(id))!;
    assert.deepEqual(session.sessionCookie.ldap_attributes, attrs);
    assert.equal(session.cookies.direct!.dn, `uid=alice,${people}`);
    assert.equal((await t.host.authorize('direct', id, { gateway_user: 'alice' })).verdict, 'ACCEPT');
  });

  it('search then bind: group search, missing attributes left out, require_groups in authorize', async () => {
    const bob = await login('search', 'bob', 'bob-pw');
    assert.equal(bob.out.verdict, 'ACCEPT');
    assert.deepEqual(bob.out.gateway_groups, ['ops']);
    assert.deepEqual(JSON.parse(bob.out.additional_metadata!), { mail: 'bob@example.org' });
    assert.equal((await t.host.authorize('search', bob.id, { gateway_user: 'bob' })).verdict, 'DENY');
    const alice = await login('search', 'alice', 'alice-pw');
    assert.equal((await t.host.authorize('search', alice.id, { gateway_user: 'alice' })).verdict, 'ACCEPT');
  });

  it('DENY (not a failure) for a bad password, an unknown user, an empty password, an injection', async () => {
    for (const [plugin, user, pw] of [
      ['direct', 'alice', 'wrong'],
      ['search', 'alice', 'wrong'],
      ['direct', 'mallory', 'x'],
      ['search', 'mallory', 'x'],
      ['direct', 'alice', ''],
      ['search', '*', 'alice-pw'],
      ['direct', 'alice,ou=people', 'alice-pw'],
    ] as const) {
      const { out } = await login(plugin, user, pw);
      assert.equal(out.verdict, 'DENY', `${plugin} ${user}`);
      assert.equal(out.failure, undefined, `${plugin} ${user}: ${JSON.stringify(out)}`);
      assert.equal(out.reason, 'Invalid user name or password');
    }
  });

  it('NEEDINFO for the password when none came', async () => {
    const out = await t.host.authenticate('direct', await t.session(), { gateway_user: 'alice' });
    assert.equal(out.verdict, 'NEEDINFO');
    assert.equal(out.question?.key, 'password');
  });

  it('StartTLS with the CA file binds; without trusting the CA it is a failure', async () => {
    assert.equal((await login('tls', 'alice', 'alice-pw')).out.verdict, 'ACCEPT');
    const bad = (await login('untrusted', 'alice', 'alice-pw')).out;
    assert.equal(bad.verdict, 'DENY');
    assert.equal(bad.failure, 'exception');
  });

  it('a server that is down is a counted failure (DENY), within the timeout', async () => {
    const port = await freePort();
    const down = await builtinHost(
      [
        {
          name: 'down',
          type: 'ldap',
          config: { url: `ldap://127.0.0.1:${port}`, user_dn: `uid={user},${people}` },
        },
      ],
      { baseDir: tempDir() },
    );
    try {
      const id = await down.session();
      const out = await down.host.authenticate('down', id, {
        gateway_user: 'alice',
        key_value_pairs: { password: 'alice-pw' },
      });
      assert.equal(out.verdict, 'DENY');
      assert.equal(out.failure, 'exception');
      assert.ok(down.logger.lines.some((l) => l.level === 'warn' && l.fields.plugin === 'down'));
      assert.deepEqual(down.host.stats.get('down', 'authenticate').failures, { exception: 1 });
    } finally {
      await down.stop();
    }
  });
});
