// Headless Chromium through TOTP self-enrolment: after the password the page shows the QR code
// (an inline SVG the page's CSP lets through) and the key; the test reads the key as a user
// would type it into an app, computes the app's code and confirms, and lands on the page asked for.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { totpCode } from '../../src/plugins/builtin/totp-code.js';
import { chromiumSkip, launchChromium } from '../support/chromium.js';
import { startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const skip = chromiumSkip();

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - { name: otp, runtime: builtin, type: totp, config: { users_file: ./users.yaml, self_enrolment: true } }
profiles:
  default:
    policy: [logon, { authenticate: users }, { authenticate: otp }, allow]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
`;

let fx: GatewayFixture;
let upstream: Awaited<ReturnType<typeof testUpstream>>;
let context: BrowserContext;

before(async () => {
  if (skip) return;
  upstream = await testUpstream();
  fx = await startTestGateway(CONFIG, { UPSTREAM: upstream.url });
  context = await launchChromium();
});
after(async () => {
  if (skip) return;
  await context.close();
  await fx.close();
  await upstream.close();
});

describe('headless Chromium through TOTP self-enrolment', { skip }, () => {
  it('scans nothing, types the key: the first code enrols and the page asked for opens', async () => {
    const page = await context.newPage();
    const blocked: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) blocked.push(m.text());
    });
    await page.goto(`${fx.gw.url}/reports?year=2026`);
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password').fill('wonderland');
    await page.getByRole('button', { name: 'Log on' }).click();
    await page.getByRole('heading', { name: 'Set up a second factor' }).waitFor();

    const qr = page.locator('.qr svg');
    const box = await qr.boundingBox();
    assert.ok(box && box.width > 100 && box.height > 100, 'the QR code is drawn');
    const key = (await page.locator('#totp-key').innerText()).replaceAll(/\s/g, '');
    assert.match(key, /^[A-Z2-7]{32}$/);

    await page.getByLabel('Code shown by your authenticator app').fill(totpCode(key, Date.now()));
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${fx.gw.url}/reports?year=2026`);
    assert.match(await page.locator('body').innerText(), /"path":"\/reports\?year=2026"/);
    assert.deepEqual(blocked, [], 'the CSP blocked nothing');
    await page.close();
  });
});
