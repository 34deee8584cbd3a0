import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Browser, basic, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

// max_sessions_per_user with on_limit: refuse ends the new logon in deny (403, the session
// closed), and leaves the user's session alone; after a logout there is room again.

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(
    `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    max_sessions_per_user: { limit: 1, on_limit: refuse }
    policy: [logon, { authenticate: users }, allow]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
`,
    { UPSTREAM: upstream.url },
  );
});
after(async () => {
  await fx.close();
  await upstream.close();
});

it('per-user limit with on_limit: refuse denies the second logon and keeps the first session', async () => {
  const first = new Browser(fx.gw.url, 'application/json');
  const auth = { authorization: basic('alice', 'wonderland') };
  assert.equal((await first.fetch('/x', { headers: auth })).status, 200);

  const second = new Browser(fx.gw.url, 'application/json');
  const refused = await second.fetch('/x', { headers: auth });
  assert.equal(refused.status, 403);
  const body = (await refused.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'SG_ERR_ACCESS_DENIED');
  assert.match(body.error.message, /most sessions allowed/);

  const browser = new Browser(fx.gw.url);
  await browser.fetch('/x');
  const page = await browser.form('/sg/logon', { username: 'alice', password: 'wonderland' });
  assert.equal(page.status, 403);
  assert.match(await page.text(), /Access denied/);

  assert.equal((await first.fetch('/x')).status, 200, 'the first session is untouched');
  const out = await first.fetch('/sg/logout', { method: 'POST', headers: { origin: fx.gw.url } });
  assert.equal(out.status, 204);
  assert.equal((await new Browser(fx.gw.url, 'application/json').fetch('/x', { headers: auth })).status, 200);
});
