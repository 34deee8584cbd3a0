// The gateway's pages and the quickstart's demo application in Debian's headless Chromium: a
// denied logon and the way back, a failed logon that keeps the user name, the demo application
// in a 1,000-pixel window naming who is logged on, a plain "Log out" link, and the dark scheme.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { chromiumSkip, launchChromium } from '../support/chromium.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { recordingLogger } from '../plugins/helpers.js';

const QUICKSTART = new URL('../../examples/quickstart/sessiongate.yaml', import.meta.url);
const PASSWORD = 'demo-Pa55-for-the-pages';

const skip = chromiumSkip();

let dir: string;
let gw: RunningGateway;
let context: BrowserContext;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'sg-pages-'));
  const hash = await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 });
  writeFileSync(join(dir, 'users.yaml'), `users:\n  demo:\n    password: ${hash}\n    groups: [demo]\n`);
  // The quickstart file itself (its identity headers included), with ./var in a temp folder and
  // no failure delay (the tests fail logons on purpose).
  const text = readFileSync(QUICKSTART, 'utf8')
    .replaceAll('../../var/', `${dir}/`)
    .replace(/ *failure_delay_ms: .*\n/, '');
  gw = await startGateway(parseConfig(text, 'quickstart.yaml', dir), { logger: recordingLogger(), port: 0 });
  context = await launchChromium();
});

after(async () => {
  if (skip) return;
  await context?.close();
  await gw?.close(1000);
  rmSync(dir, { recursive: true, force: true });
});

async function logOn(page: Page, password: string): Promise<void> {
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log on' }).click();
}

describe('headless Chromium on the gateway pages and the demo application', { skip }, () => {
  it('too many failed logons: the denied page says so and its link starts a new logon', async () => {
    await context.clearCookies();
    const page = await context.newPage();
    await page.goto(`${gw.url}/reports?q=1`);
    await page.getByLabel('User name').fill('demo');
    for (let i = 0; i < 3; i++) {
      await logOn(page, `wrong-${i}`);
      await page.waitForLoadState();
    }
    await page.getByRole('heading', { name: 'Access denied' }).waitFor();
    assert.match(
      await page.locator('main').innerText(),
      /Logon failed 3 times in a row, so this logon was ended\./,
    );
    await page.getByRole('link', { name: 'Start a new logon' }).click();
    await page.getByRole('heading', { name: 'Log on to sessiongate' }).waitFor();
    assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/reports?q=1');
    await page.close();
  });

  it('a failed logon keeps the user name; the demo application names the user and fits 1,000 pixels; a "Log out" link logs out', async () => {
    await context.clearCookies();
    const page = await context.newPage();
    await page.setViewportSize({ width: 1000, height: 700 });
    await page.goto(`${gw.url}/welcome`);
    await page.getByLabel('User name').fill('demo');
    await logOn(page, 'not-the-password');
    await page.getByText('Logon failed. Check your user name and password.').waitFor();
    assert.equal(await page.getByLabel('User name').inputValue(), 'demo');
    assert.equal(await page.getByLabel('Password').inputValue(), '');
    assert.equal(
      await page.evaluate('document.activeElement?.name'),
      'password',
      'the focus is where to type',
    );
    await logOn(page, PASSWORD);

    await page.getByRole('heading', { name: 'Demo application' }).waitFor();
    const main = await page.locator('main').innerText();
    assert.match(main, /through sessiongate as demo \(groups: demo\)\./);
    assert.match(main, /x-sessiongate-assertion/, 'the long assertion is on the page');
    const width = (await page.evaluate('document.documentElement.scrollWidth')) as number;
    assert.ok(width <= 1000, `no horizontal scroll at 1000 px (scrollWidth ${width})`);

    // An application's plain link (GET) shows a page whose button logs out (POST).
    const token = (await context.cookies(gw.url)).find((c) => c.name === 'MRHSession')!.value;
    await page.evaluate(
      `(() => { const a = document.createElement('a'); a.href = '/sg/logout'; a.textContent = 'Sign out';` +
        ` document.body.append(a); })()`,
    );
    await page.getByRole('link', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Log out' }).waitFor();
    assert.equal(await gw.engine.exists(token), true, 'following the link alone does not log out');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Logged out' }).waitFor();
    assert.equal(await gw.engine.exists(token), false);
    await page.close();
  });

  it('the dark scheme: the colours the contrast test assumes, and the lighter error text', async () => {
    await context.clearCookies();
    const page = await context.newPage();
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${gw.url}/`);
    await page.getByLabel('User name').fill('demo');
    await logOn(page, 'wrong');
    const error = page.getByRole('alert');
    await error.waitFor();
    // Through the CSSOM (the page's CSP refuses inline styles in markup, not script's).
    const colours = await page.evaluate(`(() => {
      const probe = document.createElement('div');
      probe.style.background = 'Canvas';
      probe.style.color = 'CanvasText';
      document.body.append(probe);
      const s = getComputedStyle(probe);
      return [s.backgroundColor, s.color,
        getComputedStyle(document.querySelector('.error')).color,
        getComputedStyle(document.querySelector('footer')).color];
    })()`);
    assert.deepEqual(colours, [
      'rgb(18, 18, 18)',
      'rgb(255, 255, 255)',
      'rgb(255, 138, 128)',
      'rgb(166, 166, 166)',
    ]);
    await page.close();
  });
});
