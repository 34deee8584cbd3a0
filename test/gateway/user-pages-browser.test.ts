import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { chromiumSkip, launchChromium } from '../support/chromium.js';
import { startUserPages, type UserPagesFixture } from './user-pages-support.js';

// Two headless Chromium profiles (two devices) log on as the same user; one ends the other's
// session from its sessions page, and the other is sent to the logon form on its next request.

const skip = chromiumSkip();

let t: UserPagesFixture;
let laptop: BrowserContext;
let phone: BrowserContext;

before(async () => {
  if (skip) return;
  t = await startUserPages();
  [laptop, phone] = await Promise.all([launchChromium(), launchChromium()]);
});

after(async () => {
  if (skip) return;
  await laptop?.close();
  await phone?.close();
  await t?.close();
});

async function logOn(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${t.base}/app`);
  await page.getByRole('heading', { name: 'Log on to sessiongate' }).waitFor();
  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password').fill('wonderland');
  await page.getByRole('button', { name: 'Log on' }).click();
  await page.waitForURL(`${t.base}/app`);
  assert.match(await page.content(), /"ok":true/, 'the application answered');
  return page;
}

describe('headless Chromium: ending a session from the sessions page', { skip }, () => {
  it('shows both sessions, this one marked, ends the other; the other browser gets the logon page', async () => {
    const mine = await logOn(laptop);
    const theirs = await logOn(phone);

    await mine.goto(`${t.base}/sg/sessions`);
    await mine.getByRole('heading', { name: 'Your sessions' }).waitFor();
    const items = mine.locator('ul.sessions > li');
    assert.equal(await items.count(), 2);
    assert.equal(await mine.locator('li.current').count(), 1);
    assert.match(await mine.locator('li.current').innerText(), /This session/);
    assert.match(await mine.locator('time').first().innerText(), /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);

    await mine.getByRole('button', { name: /^End session / }).click();
    await mine.getByText('The session was ended.').waitFor();
    assert.equal(await mine.locator('ul.sessions > li').count(), 1);

    await theirs.goto(`${t.base}/app`);
    await theirs.getByRole('heading', { name: 'Log on to sessiongate' }).waitFor();
    assert.ok(t.audit.some((e) => e.event === 'session_ended_by_user'));
  });
});
