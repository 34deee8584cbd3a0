import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { chromiumSkip, launchChromium } from '../support/chromium.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { recordingLogger } from '../plugins/helpers.js';

// A real browser (Debian's headless Chromium, driven by playwright-core) through the
// quickstart: the logon form, the demo application, logout. `.ci/run` installs chromium;
// without it the test is skipped here, and fails under CI=true.

const QUICKSTART = new URL('../../examples/quickstart/sessiongate.yaml', import.meta.url);
const PASSWORD = 'demo-Pa55-for-the-browser';

const skip = chromiumSkip();

let dir: string;
let gw: RunningGateway;
let context: BrowserContext;

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), 'sg-browser-'));
  const hash = await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 });
  writeFileSync(join(dir, 'users.yaml'), `users:\n  demo:\n    password: ${hash}\n    groups: [demo]\n`);
  // The quickstart file itself, with its ./var (store, key ring, users) in a temp folder.
  const text = readFileSync(QUICKSTART, 'utf8').replaceAll('../../var/', `${dir}/`);
  gw = await startGateway(parseConfig(text, 'quickstart.yaml', dir), {
    logger: recordingLogger(),
    port: 0,
  });
  context = await launchChromium();
});

after(async () => {
  if (skip) return;
  await context?.close();
  await gw?.close(1000);
  rmSync(dir, { recursive: true, force: true });
});

describe('headless Chromium through the quickstart', { skip }, () => {
  it('logs on with the form, sees the demo application, logs out', async () => {
    const page = await context.newPage();
    const start = await page.goto(`${gw.url}/welcome?from=browser`);
    assert.equal(start?.status(), 200);
    await page.getByRole('heading', { name: 'Log on to sessiongate' }).waitFor();

    await page.getByLabel('User name').fill('demo');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log on' }).click();
    await page.getByRole('heading', { name: 'Demo application' }).waitFor();
    assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/welcome?from=browser');
    assert.match(await page.locator('main').innerText(), /GET \/welcome\?from=browser/);

    const cookie = (await context.cookies(gw.url)).find((c) => c.name === 'MRHSession');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Lax');
    const id = gw.engine.sid(cookie.value);
    assert.equal((await gw.engine.get(id))?.user, 'demo');
    assert.doesNotMatch(await page.content(), /MRHSession/, 'the upstream never saw the gateway cookie');

    const shot = join(dir, 'demo.png');
    await page.screenshot({ path: shot });
    assert.ok(statSync(shot).size > 1000);
    assert.deepEqual(
      [...readFileSync(shot).subarray(0, 8)],
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    );

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Logged out' }).waitFor();
    assert.equal(await gw.engine.exists(cookie.value), false, 'the session is gone');
    // (Chromium may already hold a new pre-logon cookie: its favicon request starts a session.)
    const left = (await context.cookies(gw.url)).find((c) => c.name === 'MRHSession');
    assert.notEqual(left?.value, cookie.value, 'the old cookie is cleared');
    await page.close();
  });
});

describe('headless Chromium against the attacks of the trust boundary', { skip }, () => {
  it('after logon, a link to //evil.example/ or /\\evil.example/ stays on this site', async () => {
    for (const link of ['//evil.example/', '/\\evil.example/']) {
      await context.clearCookies();
      const page = await context.newPage();
      await page.goto(gw.url + link);
      await page.getByLabel('User name').fill('demo');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Log on' }).click();
      await page.getByRole('heading', { name: 'Demo application' }).waitFor();
      const landed = new URL(page.url());
      assert.equal(landed.host, new URL(gw.url).host, link);
      assert.equal(landed.pathname, '/evil.example/', link);
      // The logon page again (a bookmark, the back button) sends the browser to the same place.
      await page.goto(`${gw.url}/sg/logon`);
      assert.equal(new URL(page.url()).host, new URL(gw.url).host, link);
      await page.close();
    }
  });

  it("another site cannot frame the gateway's logon page", async () => {
    await context.clearCookies();
    const attacker = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>evil</title><iframe id="f" src="${gw.url}/framed"></iframe>`);
    });
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.2', r));
    try {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.2:${(attacker.address() as AddressInfo).port}/`);
      const frame = page.frames().find((f) => f !== page.mainFrame());
      assert.ok(frame, 'the frame exists');
      const inside = await frame.content().catch(() => '');
      assert.doesNotMatch(inside, /Log on to|name="password"/, 'the logon form did not render in the frame');
      await page.close();
    } finally {
      await new Promise<void>((r) => attacker.close(() => r()));
    }
  });
});
