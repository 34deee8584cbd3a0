// The admin page's session table in Debian's headless Chromium: newest first by default, sorted
// by any column with a click on its header (stable, aria-sort), short ids, user agent and
// protocol, local times with the UTC value on hover, and logons in progress hidden behind a
// toggle that counts them.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { ManualClock } from '../../src/core/clock.js';
import { chromiumSkip, launchChromium } from '../support/chromium.js';
import { startTestAdmin, TOKEN, type AdminFixture } from './helpers.js';

const skip = chromiumSkip();

let fx: AdminFixture;
let context: BrowserContext;
let page: Page;
/** Session ids by name, created a minute apart in this order. */
const ids: Record<string, string> = {};

async function make(
  name: string,
  o: { user?: string; ip: string; state?: 'allow' | 'inprogress'; variables?: Record<string, string> },
  clock: ManualClock,
): Promise<void> {
  clock.advance(60_000);
  const { id } = await fx.engine.create({
    state: o.state ?? 'allow',
    clientIp: o.ip,
    ...(o.user ? { user: o.user } : {}),
    ...(o.variables ? { variables: o.variables } : {}),
  });
  ids[name] = id;
}

before(async () => {
  if (skip) return;
  const clock = new ManualClock(Date.now() - 3_600_000);
  fx = await startTestAdmin({ clock });
  const http = (agent: string, protocol: string) => ({
    'session.user.agent': agent,
    'session.server.protocol': protocol,
  });
  await make('alice1', { user: 'alice', ip: '10.0.0.2', variables: http('Firefox/128.0', 'https') }, clock);
  await make('bob', { user: 'bob', ip: '10.0.0.10', variables: http('curl/8.5.0', 'http') }, clock);
  await make(
    'pending1',
    { ip: '10.0.0.20', state: 'inprogress', variables: http('Chrome/1', 'https') },
    clock,
  );
  await make(
    'carol',
    {
      user: 'carol',
      ip: '10.0.0.1',
      variables: { 'session.server.protocol': 'ssh', 'session.ssh.client.software': 'OpenSSH_9.6' },
    },
    clock,
  );
  await make('alice2', { user: 'alice', ip: '10.0.0.3', variables: http('Firefox/128.0', 'https') }, clock);
  await make(
    'pending2',
    { ip: '10.0.0.21', state: 'inprogress', variables: http('Chrome/1', 'http') },
    clock,
  );
  context = await launchChromium();
  page = await context.newPage();
});

after(async () => {
  if (skip) return;
  await context?.close();
  await fx?.close();
});

/** The rows on show, by name (from the full id in each row's first cell's title). */
async function order(): Promise<string[]> {
  const titles = (await page.evaluate(
    `[...document.querySelectorAll('#sessions tbody tr td:first-child')].map((td) => td.title)`,
  )) as string[];
  const byId = Object.fromEntries(Object.entries(ids).map(([name, id]) => [id, name]));
  return titles.map((t) => byId[t] ?? `?${t}`);
}

async function sortedBy(): Promise<Record<string, string>> {
  return (await page.evaluate(
    `Object.fromEntries([...document.querySelectorAll('#sessions th[aria-sort]')].map((th) => [th.textContent.trim(), th.getAttribute('aria-sort')]))`,
  )) as Record<string, string>;
}

describe('the admin page session table', { skip }, () => {
  it('newest first, in-progress logons hidden and counted; short ids, agent, protocol, local times', async () => {
    await page.goto(fx.url);
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    const table = page.getByRole('table', { name: /Sessions, refreshed/ });
    await table.getByRole('row').filter({ hasText: 'carol' }).waitFor();
    assert.deepEqual(
      (await table.getByRole('columnheader').allTextContents()).map((t) => t.trim()),
      ['Id', 'User', 'Client address', 'Protocol', 'User agent', 'State', 'Created', 'Ends in', 'Actions'],
    );
    assert.deepEqual(await order(), ['alice2', 'carol', 'bob', 'alice1']);
    assert.deepEqual(await sortedBy(), { Created: 'descending' });
    const note = page.locator('#inprogress-note');
    assert.equal((await note.innerText()).replace(/\s+/g, ' ').trim(), '2 in progress hidden — show');

    const carol = table.getByRole('row').filter({ hasText: 'carol' });
    const cells = await carol.getByRole('cell').allTextContents();
    assert.deepEqual(cells.slice(0, 6), [
      ids.carol!.slice(0, 8),
      'carol',
      '10.0.0.1',
      'ssh',
      'OpenSSH_9.6',
      'allow',
    ]);
    assert.equal(await carol.getByRole('cell').first().getAttribute('title'), ids.carol);
    const bob = table.getByRole('row').filter({ hasText: 'bob' });
    assert.equal(await bob.locator('td.agent').getAttribute('title'), 'curl/8.5.0');

    // Created: the browser's local time, the UTC value on hover.
    const created = (await fx.engine.get(ids.carol!))!.createdAt;
    const iso = new Date(created).toISOString();
    const time = carol.locator('time');
    assert.equal(await time.getAttribute('title'), `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`);
    assert.equal(await time.getAttribute('datetime'), iso);
    const local = await page.evaluate(
      `new Date(${JSON.stringify(iso)}).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' })`,
    );
    assert.equal(await time.textContent(), local);
  });

  it('a header click sorts by its column (stable: equal keys stay newest first), again reverses', async () => {
    const KEYS: Record<string, string> = {
      User: 'user',
      'Client address': 'client_ip',
      Protocol: 'protocol',
      Created: 'created',
    };
    const header = (name: string) => page.locator(`th button[data-sort="${KEYS[name]}"]`);
    await header('User').click();
    assert.deepEqual(await order(), ['alice2', 'alice1', 'bob', 'carol']);
    assert.deepEqual(await sortedBy(), { User: 'ascending' });
    await header('User').click();
    assert.deepEqual(await order(), ['carol', 'bob', 'alice2', 'alice1']);
    assert.deepEqual(await sortedBy(), { User: 'descending' });

    await header('Client address').click(); // numbers in addresses sort as numbers
    assert.deepEqual(await order(), ['carol', 'alice1', 'alice2', 'bob']);
    await header('Protocol').click();
    assert.deepEqual(await order(), ['bob', 'alice2', 'alice1', 'carol']);
    await header('Created').click();
    assert.deepEqual(await order(), ['alice1', 'bob', 'carol', 'alice2']);
    assert.deepEqual(await sortedBy(), { Created: 'ascending' });

    // The order survives the 3-second refresh.
    await page.waitForResponse((r) => r.url().includes('/api/v1/sessions?'));
    assert.deepEqual(await order(), ['alice1', 'bob', 'carol', 'alice2']);
  });

  it('the toggle shows and hides the logons in progress; the state filter shows them too', async () => {
    await page.getByRole('button', { name: 'show', exact: true }).click();
    assert.deepEqual(await order(), ['alice1', 'bob', 'pending1', 'carol', 'alice2', 'pending2']);
    const note = page.locator('#inprogress-note');
    assert.equal((await note.innerText()).replace(/\s+/g, ' ').trim(), '2 in progress shown — hide');
    await page.getByRole('button', { name: 'hide', exact: true }).click();
    assert.deepEqual(await order(), ['alice1', 'bob', 'carol', 'alice2']);

    await page.getByLabel('State', { exact: true }).selectOption('inprogress');
    await page.locator('#sessions tbody tr', { hasText: 'inprogress' }).first().waitFor();
    await page.waitForFunction(`document.querySelectorAll('#sessions tbody tr').length === 2`);
    assert.deepEqual(await order(), ['pending1', 'pending2']);
    assert.equal(await note.isHidden(), true, 'no toggle when the filter asks for them');
  });
});
