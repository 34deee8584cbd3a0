// Headless Chromium through an OpenID Connect sign-in: a protected page sends the browser to the
// provider's login page, the user signs in there and lands on the page asked for; logging out
// goes through the provider's logout (RP-initiated) and back to the configured page.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { chromiumSkip, launchChromium } from '../support/chromium.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { freePort } from '../e2e/gateways.js';
import { recordingLogger } from '../plugins/helpers.js';
import { ssoPlugin, startOidcProvider, type TestProvider } from '../support/oidc-provider.js';
import { testUpstream } from './harness.js';

const skip = chromiumSkip();

let dir: string;
let gw: RunningGateway;
let op: TestProvider;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let context: BrowserContext;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'sg-oidc-browser-'));
  const port = await freePort();
  upstream = await testUpstream();
  const gwUrl = `http://127.0.0.1:${port}`;
  op = await startOidcProvider({
    redirectUri: `${gwUrl}/sg/oidc/callback`,
    postLogoutRedirectUri: `${upstream.url}/signed-out`,
  });
  writeFileSync(join(dir, 'oidc-secret'), `${op.clientSecret}\n`, { mode: 0o600 });
  const yaml = `
listen: { port: ${port} }
store: memory
keys: ${dir}/keyring.json
plugins:
${ssoPlugin(op, { redirect_uri: `${gwUrl}/sg/oidc/callback`, end_session_redirect: `${upstream.url}/signed-out` })}profiles:
  default:
    policy: [ { authenticate: sso }, allow ]
routes:
  - { upstream: "${upstream.url}" }
`;
  gw = await startGateway(parseConfig(yaml, 'oidc.yaml', dir), { logger: recordingLogger(), port });
  context = await launchChromium();
});

after(async () => {
  if (skip) return;
  await context?.close();
  await gw?.close(1000);
  await op?.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('headless Chromium through an OpenID Connect sign-in', { skip }, () => {
  it('protected page → provider login → the page asked for; logout through the provider', async () => {
    const page = await context.newPage();
    await page.goto(`${gw.url}/hello?from=browser`);
    await page.getByRole('heading', { name: 'Test provider sign-in' }).waitFor();
    assert.ok(page.url().startsWith(`${op.issuer}/interaction/`), page.url());
    await page.getByLabel('User').fill('alice');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${gw.url}/hello?from=browser`);
    assert.match(await page.locator('body').innerText(), /"path":"\/hello\?from=browser"/);
    const sessions = (await gw.engine.list()).sessions;
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0]!.variables['session.oauth.email'], 'alice@example.org');

    // A same-origin logout form, as an application would have.
    // (A string: the test is compiled without the DOM's types.)
    await page.evaluate(
      `(() => { const f = document.createElement('form'); f.method = 'post'; f.action = '/sg/logout';` +
        ` document.body.append(f); f.submit(); })()`,
    );
    await page.waitForURL((url) => url.href.startsWith(op.issuer));
    await page.getByRole('button', { name: /sign me out/i }).click();
    await page.waitForURL(`${upstream.url}/signed-out`);
    assert.equal((await gw.engine.list()).sessions.length, 0, 'the gateway session ended');

    // Signed out at the provider too: the protected page asks for a sign-in again.
    await page.goto(`${gw.url}/hello`);
    await page.getByRole('heading', { name: 'Test provider sign-in' }).waitFor();
    await page.close();
  });
});
