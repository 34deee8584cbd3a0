import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { globMatch, isHostName, matchHost, parseDestination } from '../../src/ssh/destination.js';

const ok = (
  input: string,
  want: { gatewayUser?: string; targetUser: string; host: string; port: number },
  defaults?: { port?: number },
): void => {
  assert.deepEqual(parseDestination(input, defaults), want, input);
};
const refused = (input: string, reason: RegExp): void => {
  const got = parseDestination(input);
  assert.ok('error' in got, `${input} should be refused, got ${JSON.stringify(got)}`);
  assert.match(got.error, reason, input);
  assert.doesNotMatch(got.error, /\n/);
};

describe('parseDestination: the forms SPS documents', () => {
  it('user@server, with the default port', () => {
    ok('root@db1.internal', { targetUser: 'root', host: 'db1.internal', port: 22 });
    ok('training1@linux.training.example', {
      targetUser: 'training1',
      host: 'linux.training.example',
      port: 22,
    });
    ok('root@192.168.56.10', { targetUser: 'root', host: '192.168.56.10', port: 22 });
    ok('root@db1', { targetUser: 'root', host: 'db1', port: 2200 }, { port: 2200 });
  });

  it('user@server:port, and + or / instead of :', () => {
    ok('root@db1.internal:2222', { targetUser: 'root', host: 'db1.internal', port: 2222 });
    ok('root@db1+2222', { targetUser: 'root', host: 'db1', port: 2222 });
    ok('root@db1/2222', { targetUser: 'root', host: 'db1', port: 2222 });
    ok('training1@192.168.60.100:2121', { targetUser: 'training1', host: '192.168.60.100', port: 2121 });
    ok('root@db1:65535', { targetUser: 'root', host: 'db1', port: 65535 });
    ok('root@db1:1', { targetUser: 'root', host: 'db1', port: 1 });
  });

  it('% instead of the @ between user and server', () => {
    ok('root%db1.internal', { targetUser: 'root', host: 'db1.internal', port: 22 });
    ok('username%targetserver+2222', { targetUser: 'username', host: 'targetserver', port: 2222 });
  });

  it('gateway user: gu=gateway@user@server[:port]', () => {
    ok('gu=alice@root@db1.internal', {
      gatewayUser: 'alice',
      targetUser: 'root',
      host: 'db1.internal',
      port: 22,
    });
    ok('gu=alice@root@db1:2222', { gatewayUser: 'alice', targetUser: 'root', host: 'db1', port: 2222 });
    ok('gu=alice@root%db1/2222', { gatewayUser: 'alice', targetUser: 'root', host: 'db1', port: 2222 });
    ok('gu=EXAMPLE\\alice@root@db1', {
      gatewayUser: 'EXAMPLE\\alice',
      targetUser: 'root',
      host: 'db1',
      port: 22,
    });
  });

  it('IPv6 in brackets', () => {
    ok('root@[::1]:2222', { targetUser: 'root', host: '::1', port: 2222 });
    ok('root@[::1]', { targetUser: 'root', host: '::1', port: 22 });
    ok('root%[fd00::10]+2022', { targetUser: 'root', host: 'fd00::10', port: 2022 });
    ok('root@[2001:db8::ffff:1.2.3.4]/80', { targetUser: 'root', host: '2001:db8::ffff:1.2.3.4', port: 80 });
  });

  it('user names keep characters that are not separators', () => {
    ok('DOMAIN\\svc.backup-1@db1', { targetUser: 'DOMAIN\\svc.backup-1', host: 'db1', port: 22 });
    ok('a+b@db1', { targetUser: 'a+b', host: 'db1', port: 22 });
  });
});

describe('parseDestination: refusals, one line each', () => {
  it('missing or empty parts', () => {
    refused('', /empty user name/);
    refused('root', /no target server/);
    refused('@db1', /empty target user/);
    refused('%db1', /empty target user/);
    refused('root@', /empty target server/);
    refused('root@:22', /empty target server/);
    refused('root@db1:', /empty port/);
    refused('gu=@root@db1', /empty gateway user/);
    refused('gu=alice', /gu=gatewayuser@user@server/);
    refused('gu=alice@root', /no target server/);
  });

  it('the gateway user separator is @ only (SPS documents no alternate there)', () => {
    refused('gu=alice%root%db1', /no target server|gateway user/);
    refused('gu=al%ice@root@db1', /gateway user contains/);
  });

  it('spaces and control characters', () => {
    refused('root @db1', /space or a control/);
    refused('root@db1\n', /space or a control/);
    refused('root@db1\u0000', /space or a control/);
    refused('ro\u007fot@db1', /space or a control/);
    refused('root@db1\u00a0', /space or a control/);
    refused('root@db1\u2028', /space or a control/);
  });

  it('ports out of range or not plain digits', () => {
    refused('root@db1:0', /port must be 1\.\.65535/);
    refused('root@db1:65536', /port must be 1\.\.65535/);
    refused('root@db1:022', /port must be/);
    refused('root@db1:22x', /port must be/);
    refused('root@db1:-1', /port must be/);
    refused('root@db1:1e3', /port must be/);
    refused('root@db1:22:23', /brackets/);
    refused('root@db1:99999999999999999999', /port must be/);
  });

  it('hosts that are neither DNS names nor IP literals', () => {
    refused('root@db_1', /not a valid host name/);
    refused('root@-db1', /not a valid host name/);
    refused('root@db1-', /not a valid host name/);
    refused('root@db1..internal', /not a valid host name/);
    refused('root@db1.', /not a valid host name/);
    refused('root@10.0.0.300', /not a valid host name/);
    refused('root@1.2.3', /not a valid host name/);
    refused(`root@${'a'.repeat(64)}.example`, /not a valid host name/);
    refused('root@db1@extra', /not a valid host name/);
    refused('root@db1%extra', /not a valid host name/);
    refused('root@::1', /IPv6 address goes in brackets/);
    refused('root@fd00::1:22', /IPv6 address goes in brackets/);
    refused('root@[db1]:22', /not an IPv6 address/);
    refused('root@[::1', /unclosed/);
    refused('root@[::1]x22', /unexpected text after/);
    refused('root@[fe80::1%eth0]', /not a valid host name|IPv6/);
  });

  it('over-long input', () => {
    refused(`root@${'a.'.repeat(300)}b`, /longer than 512/);
    assert.ok(!('error' in parseDestination(`${'u'.repeat(400)}@db1`)));
  });

  it('accepts the longest legal DNS name and refuses one character more', () => {
    const name = [60, 60, 60, 61].map((n, i) => String.fromCharCode(97 + i).repeat(n)).join('.');
    assert.equal(name.length, 244);
    assert.equal(isHostName(name), true);
    assert.equal(
      isHostName(`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}`),
      false,
    );
  });
});

const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?$/);
const dnsHost = fc
  .array(label, { minLength: 1, maxLength: 4 })
  .filter((ls) => !/^[0-9]+$/.test(ls[ls.length - 1] ?? ''))
  .map((ls) => ls.join('.'));
const host = fc.oneof(
  dnsHost,
  fc.ipV4(),
  fc.ipV6().map((h) => `[${h}]`),
);
// A target user that starts with `gu=` is the gateway-user form: inherently ambiguous, left out.
const user = fc.stringMatching(/^[A-Za-z0-9._\\+=:/[\]-]{1,20}$/).filter((u) => !u.startsWith('gu='));

describe('parseDestination: properties', () => {
  it('every valid (gateway user, user, host, port) in any accepted spelling parses back', () => {
    fc.assert(
      fc.property(
        fc.option(user, { nil: undefined }),
        user,
        host,
        fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
        fc.constantFrom('@', '%'),
        fc.constantFrom(':', '+', '/'),
        (gw, target, h, port, userSep, portSep) => {
          const gwPart = gw === undefined ? '' : `gu=${gw}@`;
          const text = `${gwPart}${target}${userSep}${h}${port === undefined ? '' : portSep + String(port)}`;
          const want = {
            ...(gw === undefined ? {} : { gatewayUser: gw }),
            targetUser: target,
            host: h.startsWith('[') ? h.slice(1, -1) : h,
            port: port ?? 22,
          };
          assert.deepEqual(parseDestination(text), want, text);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never throws and always answers a destination or a one-line reason', () => {
    const alphabet = fc.constantFrom(...'ab1@%:+/[]=gu.-\\ \n\u0000é:'.split(''));
    const text = fc.oneof(fc.string({ maxLength: 600 }), fc.string({ unit: alphabet, maxLength: 40 }));
    fc.assert(
      fc.property(text, (s) => {
        const got = parseDestination(s);
        if ('error' in got) assert.doesNotMatch(got.error, /[\r\n]/);
        else assert.ok(got.port >= 1 && got.port <= 65535 && got.host !== '' && got.targetUser !== '');
      }),
      { numRuns: 3000 },
    );
  });
});

describe('matchHost', () => {
  it('shell wildcards, case-insensitive', () => {
    assert.equal(matchHost('*.internal', 'DB1.Internal'), true);
    assert.equal(matchHost('db?.internal', 'db1.internal'), true);
    assert.equal(matchHost('db?.internal', 'db12.internal'), false);
    assert.equal(matchHost('*', 'anything'), true);
    assert.equal(matchHost('db1', 'db1.internal'), false);
    assert.equal(matchHost('*db*', 'mydb1'), true);
    assert.equal(matchHost('a*b*c', 'aXbYbZc'), true);
    assert.equal(matchHost('a*b*c', 'aXbYbZ'), false);
  });

  it('comma lists with negation, as ssh_config', () => {
    assert.equal(matchHost('*.internal,!secret.internal', 'db1.internal'), true);
    assert.equal(matchHost('*.internal,!secret.internal', 'secret.internal'), false);
    assert.equal(matchHost('!secret.internal', 'db1.internal'), false);
    assert.equal(matchHost('', 'db1'), false);
  });

  it('CIDR patterns match IP literals only', () => {
    assert.equal(matchHost('10.0.0.0/8', '10.2.3.4'), true);
    assert.equal(matchHost('10.0.0.0/8', '11.2.3.4'), false);
    assert.equal(matchHost('10.0.0.0/8', 'db1'), false);
    assert.equal(matchHost('fd00::/8', 'fd00::10'), true);
    assert.equal(matchHost('fd00::/8', '[fd00::10]'), true);
    assert.equal(matchHost('10.0.0.0/8,!10.9.0.0/16', '10.9.1.1'), false);
    assert.equal(matchHost('10.0.0.0/33', '10.0.0.1'), false);
  });

  it('a hostile pattern stays fast', () => {
    const started = process.hrtime.bigint();
    assert.equal(globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(400)), false);
    assert.ok(process.hrtime.bigint() - started < 1_000_000_000n);
  });
});
