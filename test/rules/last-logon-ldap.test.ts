import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Attribute, Change, Client } from 'ldapts';
import { BASE_DN, ROOT_DN, slapdRequired, slapdSkip, startSlapd, type Slapd } from '../support/slapd.js';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from '../gateway/harness.js';

const root = new URL('../../', import.meta.url).pathname;
const skip = slapdRequired() ? false : slapdSkip();
const adTicks = (epochSeconds: number): string =>
  ((BigInt(epochSeconds) + 11_644_473_600n) * 10_000_000n).toString();

describe('reference example 2 against the ldap plugin and a real slapd', { skip }, () => {
  let server: Slapd;
  let fx: GatewayFixture;
  let upstream: Awaited<ReturnType<typeof testUpstream>>;

  before(async () => {
    server = await startSlapd();
    upstream = await testUpstream();
    fx = await startTestGateway(
      `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - name: ldap
    runtime: builtin
    type: ldap
    config: { url: "${server.url}", user_dn: "uid={user},ou=people,${BASE_DN}", attributes: [ lastLogon, mail ], timeout_ms: 3000 }
profiles:
  default:
    policy: [ logon, { authenticate: ldap }, { event: lastLogon }, allow ]
rules: [ ${root}examples/rules/last-logon.ts ]
routes: [ { upstream: "\${UPSTREAM}" } ]
`,
      { UPSTREAM: upstream.url },
    );
  });
  after(async () => {
    await fx?.close();
    await upstream?.close();
    await server?.stop();
  });

  async function setLastLogon(ticks: string): Promise<void> {
    const client = new Client({ url: server.url });
    await client.bind(ROOT_DN, 'admin-pw');
    await client.modify(`uid=alice,ou=people,${BASE_DN}`, [
      new Change({
        operation: 'replace',
        modification: new Attribute({ type: 'lastLogon', values: [ticks] }),
      }),
    ]);
    await client.unbind();
  }

  for (const [days, expected] of [
    [1, '1'],
    [20, '0'],
  ] as const) {
    it(`a lastLogon ${days} day(s) old gives lastLogonWithin2Weeks = ${expected}`, async () => {
      const ticks = adTicks(Math.floor(fx.clock.now() / 1000) - days * 86_400);
      await setLastLogon(ticks);
      const b = new Browser(fx.gw.url);
      await b.fetch('/');
      assert.equal((await b.form('/sg/logon', { username: 'alice', password: 'alice-pw' })).status, 302);
      const id = fx.gw.engine.sid(b.jar.get('MRHSession')!);
      assert.equal(await fx.gw.engine.data.get(id, 'session.ad.last.attr.lastLogon'), ticks);
      assert.equal(await fx.gw.engine.data.get(id, 'session.custom.lastLogonWithin2Weeks'), expected);
    });
  }
});
