import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/gateway/config/load.js';

// reauth_within needs a logon the gateway can repeat itself: refused at start otherwise.

process.env.SG_TEST_REAUTH_SECRET = 'not-a-real-secret';

const yaml = (route: string, policy: string): string => `
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - name: sso
    runtime: builtin
    type: oidc
    config: { issuer: "https://op.example.org", client_id: c, client_secret_env: SG_TEST_REAUTH_SECRET, redirect_uri: "https://gw.example.org/sg/oidc/callback" }
profiles:
  default:
    policy: ${policy}
routes:
  - { upstream: "http://127.0.0.1:9", reauth_within: 300${route} }
`;

describe('reauth_within in the configuration', () => {
  it('is accepted on a route of a profile with a logon', () => {
    const loaded = parseConfig(yaml('', '[logon, { authenticate: users }, allow]'), 'r.yaml', tmpdir());
    assert.equal(loaded.config.routes[0]?.reauth_within, 300);
  });

  it('is refused with bearer, with a sign-in at an identity provider, without a logon step, or not a whole number', () => {
    assert.throws(
      () =>
        parseConfig(
          yaml(', bearer: { plugin: sso, audience: api }', '[logon, { authenticate: users }, allow]'),
          'r.yaml',
          tmpdir(),
        ),
      /routes\.0\.reauth_within: reauth_within cannot be used with bearer/,
    );
    assert.throws(
      () => parseConfig(yaml('', '[{ authenticate: sso }, allow]'), 'r.yaml', tmpdir()),
      /routes\.0\.reauth_within: .*identity provider/,
    );
    assert.throws(
      () => parseConfig(yaml('', '[allow]'), 'r.yaml', tmpdir()),
      /routes\.0\.reauth_within: reauth_within needs a profile whose policy has a logon or authenticate step/,
    );
    assert.throws(
      () => parseConfig(yaml('', '[logon, allow]').replace('300', '2.5'), 'r.yaml', tmpdir()),
      /routes\.0\.reauth_within/,
    );
  });
});
