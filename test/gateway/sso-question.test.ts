import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Browser, startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const here = new URL('.', import.meta.url).pathname;
let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;

before(async () => {
  upstream = await testUpstream();
  fx = await startTestGateway(
    `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: sso, runtime: module, path: ${here}fixtures/fake-sso.ts }
profiles:
  default:
    policy: [ { authenticate: sso }, allow ]
routes:
  - { upstream: "\${UPSTREAM}" }
`,
    { UPSTREAM: upstream.url },
  );
});
after(async () => {
  await fx.close();
  await upstream.close();
});

const stateOf = (location: string | null) => new URL(location ?? 'http://x/').searchParams.get('state') ?? '';

describe('a question answered at an identity provider (redirect + /sg/oidc/callback)', () => {
  it('sends the browser to the provider, takes the answer at the callback, keeps claims and tokens', async () => {
    const b = new Browser(fx.gw.url);
    const first = await b.fetch('/app/page?x=1');
    assert.equal(first.status, 302);
    const location = first.headers.get('location');
    assert.match(location ?? '', /^http:\/\/idp\.invalid\/authorize\?state=st-/);
    const back = await b.fetch(`/sg/oidc/callback?state=${stateOf(location)}&code=c1&user=alice`);
    assert.equal(back.status, 302);
    assert.equal(back.headers.get('location'), '/app/page?x=1');
    const app = await b.fetch('/app/page?x=1');
    assert.equal(app.status, 200);
    const id = fx.gw.engine.sid(b.jar.get('MRHSession')!);
    const s = await fx.gw.engine.get(id);
    assert.equal(s?.user, 'alice');
    assert.equal(s?.variables['session.oauth.sub'], 'sub-1');
    assert.equal(s?.variables['session.logon.last.groups'], 'dev');
    assert.equal(s?.variables['session.oauth.access_token'], undefined, 'a token is not a plain variable');
    assert.equal(
      await fx.gw.engine.data.get(id, 'session.oauth.access_token', { secure: true }),
      'at-secret-123',
    );
    assert.ok(!JSON.stringify(s?.secure).includes('at-secret-123'), 'encrypted at rest');
  });

  it('the answer cannot come through the logon form or the answer header, only the callback', async () => {
    const b = new Browser(fx.gw.url);
    const first = await b.fetch('/');
    const state = stateOf(first.headers.get('location'));
    const form = await b.form('/sg/logon', { question: 'oidc_callback', answer: `state=${state}&code=x` });
    assert.equal(form.status, 302);
    assert.match(
      form.headers.get('location') ?? '',
      /^http:\/\/idp\.invalid\//,
      'still sent to the provider',
    );
    const api = new Browser(fx.gw.url, 'application/json');
    api.jar.set('MRHSession', b.jar.get('MRHSession')!);
    const header = await api.fetch('/', { headers: { 'x-sessiongate-answer': `state=${state}&code=x` } });
    assert.equal(header.status, 401);
    const id = fx.gw.engine.sid(b.jar.get('MRHSession')!);
    assert.equal((await fx.gw.engine.get(id))?.state, 'inprogress');
  });

  it('a callback with a wrong state ends in deny; a callback without a logon in progress gets a page', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/');
    const bad = await b.fetch('/sg/oidc/callback?state=forged&code=c');
    assert.equal(bad.status, 403);
    const stray = await new Browser(fx.gw.url).fetch('/sg/oidc/callback?state=x&code=y');
    assert.equal(stray.status, 400);
    assert.match(await stray.text(), /Sign-in not in progress/);
  });
});
