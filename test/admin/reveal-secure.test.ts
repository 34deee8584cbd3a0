import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli, tempDir } from '../cli/helpers.js';
import { startTestAdmin, TOKEN, type AdminFixture } from './helpers.js';

// A secure value in clear over the admin API is opt-in (admin.reveal_secure), for token clients
// only, and every attempt leaves an audit line with the variable's name, never its value.
const PIN = 'pin-7Hq2-secret';
const NAME = 'session.custom.pin';

async function sessionWithPin(fx: AdminFixture): Promise<string> {
  const { id } = (await fx.call('POST', '/api/v1/sessions', { user: 'alice' })).body as { id: string };
  const put = await fx.call('PUT', `/api/v1/sessions/${id}/variables/${NAME}`, { value: PIN, secure: true });
  assert.equal(put.status, 204);
  return id;
}

const reveals = (fx: AdminFixture) => fx.audit.filter((l) => l.event === 'variable_reveal');

describe('admin API: secure values are not revealed by default', () => {
  let fx: AdminFixture;
  before(async () => (fx = await startTestAdmin()));
  after(() => fx.close());

  it('?secure=1 is 403 SG_ERR_SECURE_REVEAL_DISABLED, audited as refused, the value nowhere', async () => {
    const id = await sessionWithPin(fx);
    const res = await fx.call('GET', `/api/v1/sessions/${id}/variables/${NAME}?secure=1`);
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'SG_ERR_SECURE_REVEAL_DISABLED');
    assert.match(res.body.error.message, /admin\.reveal_secure is off/);
    assert.ok(!JSON.stringify(res.body).includes(PIN));
    assert.deepEqual(
      reveals(fx).map(({ session_id, name, allowed, by }) => ({ session_id, name, allowed, by })),
      [{ session_id: id, name: NAME, allowed: false, by: 'admin_api' }],
    );
    assert.ok(!fx.auditText.join('').includes(PIN));
    // The CLI through the API says why, in one line.
    const cli = await runCli(['session', 'data', 'get', id, '--secure', NAME, '--url', fx.url], tempDir(), {
      SESSIONGATE_ADMIN_TOKEN: TOKEN,
    });
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /^sessiongate: SG_ERR_SECURE_REVEAL_DISABLED: .*admin\.reveal_secure is off/);
    assert.equal(cli.stdout, '');
    // The masked view is unchanged.
    const detail = await fx.call('GET', `/api/v1/sessions/${id}`);
    assert.equal(detail.body.variables[NAME], '********');
  });
});

describe('admin API: reveal_secure on', () => {
  let fx: AdminFixture;
  before(async () => (fx = await startTestAdmin({ revealSecure: true })));
  after(() => fx.close());

  it('the token client reads the value; the audit line names the variable, not the value', async () => {
    const id = await sessionWithPin(fx);
    const res = await fx.call('GET', `/api/v1/sessions/${id}/variables/${NAME}?secure=1`);
    assert.equal(res.status, 200);
    assert.equal(res.body.value, PIN);
    const [line, ...more] = reveals(fx);
    assert.deepEqual(more, []);
    assert.equal(line?.session_id, id);
    assert.equal(line?.name, NAME);
    assert.equal(line?.allowed, true);
    assert.equal(line?.by, 'admin_api');
    assert.equal(line?.user, 'alice');
    assert.ok(!fx.auditText.join('').includes(PIN), 'never the value');
  });

  it('the web page (cookie) never gets a secure value, even with reveal_secure on', async () => {
    const id = await sessionWithPin(fx);
    const page = { 'x-requested-with': 'sessiongate-admin' };
    const login = await fx.call('POST', '/login', { token: TOKEN }, { token: null, headers: page });
    assert.equal(login.status, 204);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
    const res = await fx.call('GET', `/api/v1/sessions/${id}/variables/${NAME}?secure=1`, undefined, {
      token: null,
      headers: { cookie },
    });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'SG_ERR_SECURE_REVEAL_DISABLED');
    assert.match(res.body.error.message, /page never shows secure values/);
    assert.ok(!JSON.stringify(res.body).includes(PIN));
    assert.equal(reveals(fx).at(-1)?.by, 'admin_page');
    assert.equal(reveals(fx).at(-1)?.allowed, false);
  });
});
