import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/gateway/config/load.js';
import { generateEd25519KeyPair } from '../../src/ssh/host-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-sshcfg-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const aliceKey = generateEd25519KeyPair().public;

const BASE = `
store: memory
plugins:
  - { name: vault, runtime: builtin, type: file-credentials, config: { credentials_file: ./creds.json } }
profiles:
  ssh: { policy: [ logon, allow ] }
routes:
  - { upstream: demo }
`;

/** The problems check-config reports for this ssh section ([] when it is valid). */
function problems(ssh: string): string[] {
  try {
    parseConfig(`${BASE}ssh:\n${ssh}`, 'gw.yaml', dir);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

const ROUTE = `  routes:
    - { hosts: [ "db*.internal", 10.0.0.0/8 ], profile: ssh, credentials: { plugin: vault }, allow: [ { users: [alice], target_users: [root] } ] }
`;

describe('the ssh section of the configuration', () => {
  it('accepts a complete section, with its defaults', () => {
    assert.deepEqual(problems(`  authorized_keys: { alice: [ "${aliceKey}" ] }\n${ROUTE}`), []);
    const { config } = parseConfig(`${BASE}ssh:\n${ROUTE}`, 'gw.yaml', dir);
    assert.equal(config.ssh?.listen.port, 2222);
    assert.deepEqual(config.ssh?.routes[0]?.ports, [22]);
    assert.equal(config.ssh?.unknown_hosts, 'refuse');
    assert.deepEqual(config.ssh?.routes[0]?.forwarding, { local: false, remote: false });
  });

  it('names each problem by its path', () => {
    const cases: [string, RegExp][] = [
      ['  routes: []\n', /ssh\.routes: the SSH gateway needs at least one route/],
      [
        `  routes:\n    - { hosts: [ a ], allow: [] }\n`,
        /ssh\.routes\.0\.allow: an SSH route needs at least one allow entry/,
      ],
      [
        `  routes:\n    - { hosts: [ a ], allow: [ { users: [alice] } ] }\n`,
        /ssh\.routes\.0\.allow\.0\.target_users/,
      ],
      [
        `  routes:\n    - { hosts: [ a ], profile: nope, allow: [ { target_users: ['*'] } ] }\n`,
        /ssh\.routes\.0\.profile: no profile named nope/,
      ],
      [
        `  routes:\n    - { hosts: [ a ], credentials: { plugin: nope }, allow: [ { target_users: ['*'] } ] }\n`,
        /ssh\.routes\.0\.credentials\.plugin: no plugin named nope/,
      ],
      [
        `  routes:\n    - { hosts: [ "a b" ], allow: [ { target_users: ['*'] } ] }\n`,
        /ssh\.routes\.0\.hosts\.0: expected a host name/,
      ],
      [
        `  routes:\n    - { hosts: [ 10.0.0.0/99 ], allow: [ { target_users: ['*'] } ] }\n`,
        /ssh\.routes\.0\.hosts\.0: expected a CIDR/,
      ],
      [
        `  routes:\n    - { hosts: [ a ], ports: [ 70000 ], allow: [ { target_users: ['*'] } ] }\n`,
        /ssh\.routes\.0\.ports\.0: expected a port number/,
      ],
      [
        `  authorized_keys: { alice: [ "ssh-ed25519 notbase64!" ] }\n${ROUTE}`,
        /ssh\.authorized_keys\.alice\.0: the key data is not base64/,
      ],
      [
        `  authorized_keys: { alice: [ "ssh-dss AAAA" ] }\n${ROUTE}`,
        /ssh\.authorized_keys\.alice\.0: expected an SSH public key/,
      ],
      [
        `  listen: { port: 8080 }\n${ROUTE}`,
        /ssh\.listen\.port: the SSH listener cannot share port 8080 with listen\.port/,
      ],
      [`  unknown_hosts: trust\n${ROUTE}`, /ssh\.unknown_hosts/],
      [`  typo: 1\n${ROUTE}`, /ssh\.typo: unknown setting/],
      [`  host_keys: [ ./${'k'.repeat(300)} ]\n${ROUTE}`, /ssh\.host_keys\.0: the file name .* too long/],
    ];
    for (const [section, expected] of cases) {
      const found = problems(section);
      assert.ok(
        found.some((p) => expected.test(p)),
        `${section.trim()}\n expected ${expected}, got:\n ${found.join('\n ')}`,
      );
    }
  });
});
