import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import type { RunningAdmin } from '../../src/admin/server.js';
import { prepareAdmin } from '../../src/cli/serve-admin.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { Browser } from '../gateway/harness.js';
import { recordingLogger } from '../plugins/helpers.js';

// The admin page in a real browser: Debian's chromium driven by playwright-core (never a
// downloaded browser). Without chromium the test is skipped loudly, except in CI, where it fails.
const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: apt-get install chromium`);
  console.warn(
    `\n*** SKIPPING the admin page browser test: ${CHROMIUM} is missing (apt-get install chromium) ***\n`,
  );
}

const CONFIG = `
store: memory
keys: ./keyring.json
admin: { port: 0, token_file: ./admin.token }
audit: { file: ./audit.log }
# Any undelivered close record counts as behind at once; the stop does not wait for a hanging one.
close_pipeline: { behind_after_ms: 1, shutdown_grace_ms: 0 }
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    failure_delay_ms: { min: 0, max: 0 }
    keep_password: true # a secure variable the page must show masked
    policy: [ logon, { authenticate: users }, allow ]
routes:
  - { match: { path: / }, upstream: demo }
# No SSH listener here (startGateway serves HTTP only): the recording folder the admin page lists.
ssh:
  routes:
    - { hosts: [ target ], allow: [ { target_users: ['*'] } ], recording: { dir: ./recordings } }
`;

let dir: string;
let running: RunningGateway;
let admin: RunningAdmin;
let closeAll: () => Promise<void>;
let context: BrowserContext;
let page: Page;

before(async () => {
  if (!haveChromium) return;
  dir = mkdtempSync(join(tmpdir(), 'sg-page-'));
  writeFileSync(
    join(dir, 'users.yaml'),
    `users:\n  alice:\n    password: ${await hashPassword('wonderland', { N: 1024, r: 8, p: 1 })}\n` +
      `  bob:\n    password: ${await hashPassword('builder', { N: 1024, r: 8, p: 1 })}\n`,
  );
  const loaded = parseConfig(CONFIG, 'test.yaml', dir);
  const logger = recordingLogger();
  const side = prepareAdmin(loaded, logger, { processMetrics: false });
  running = await startGateway(loaded, { logger, port: 0, ...side.gatewayOptions });
  const attached = await side.attach(running, true, dir);
  admin = attached.admin!;
  closeAll = attached.close;
  const { chromium } = await import('playwright-core');
  context = await chromium.launchPersistentContext(join(dir, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('dialog', (dialog) => void dialog.accept());
});

after(async () => {
  if (!haveChromium) return;
  await context?.close();
  await closeAll?.();
  rmSync(dir, { recursive: true, force: true });
});

async function logon(user: string, password: string): Promise<Browser> {
  const b = new Browser(running.url);
  await b.fetch('/app');
  assert.equal((await b.form('/sg/logon', { username: user, password })).status, 302);
  assert.equal((await b.fetch('/app')).status, 200);
  return b;
}

describe('the admin web page', { skip: !haveChromium && `${CHROMIUM} missing` }, () => {
  it('logs in with the token, shows, opens and kills a gateway session; the gateway then refuses its cookie', async () => {
    const alice = await logon('alice', 'wonderland');
    const bob = await logon('bob', 'builder');
    // A logon not finished: its access policy timeout (300 s) ends it before its idle timeout.
    await new Browser(running.url).fetch('/app');
    const aliceCookie = alice.jar.get('MRHSession')!;

    await page.goto(admin.url);
    const tokenField = page.getByLabel('Admin token');
    await tokenField.waitFor();
    await tokenField.fill('not-the-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('That is not the admin token.').waitFor();

    await tokenField.fill(readFileSync(join(dir, 'admin.token'), 'utf8').trim());
    await page.getByRole('button', { name: 'Log in' }).click();
    const table = page.getByRole('table', { name: /Sessions, refreshed/ });
    const aliceRow = table.getByRole('row').filter({ hasText: 'alice' });
    await aliceRow.waitFor();
    assert.deepEqual(
      (await table.getByRole('columnheader').allTextContents()).map((t) => t.trim()),
      ['Id', 'User', 'Client address', 'Protocol', 'User agent', 'State', 'Created', 'Ends in', 'Actions'],
    );
    assert.match((await aliceRow.textContent()) ?? '', /alice127\.0\.0\.1http.*allow.*\d+m \d+s \(idle\)/);
    // Logons in progress are hidden until asked for (test/admin/sessions-table.browser.test.ts).
    await page.getByRole('button', { name: 'show', exact: true }).click();
    const pendingRow = table.getByRole('row').filter({ hasText: 'inprogress' });
    assert.match((await pendingRow.textContent()) ?? '', /inprogress.*(4m \d+s|5m 0s) \(access policy\)/);
    await page.locator('[data-count="allow"]').filter({ hasText: '2' }).waitFor();

    // The admin session is an HttpOnly cookie: nothing in script reach, nothing in storage.
    assert.equal(await page.evaluate('document.cookie'), '');
    assert.equal(await page.evaluate('localStorage.length + sessionStorage.length'), 0);

    // Filters.
    await page.getByLabel('User', { exact: true }).fill('bob');
    await aliceRow.waitFor({ state: 'detached' });
    await table.getByRole('row').filter({ hasText: 'bob' }).waitFor();
    await page.getByRole('button', { name: 'Clear' }).click();
    await aliceRow.waitFor();

    // Details: variables with the secure password masked; focus moves to the panel.
    const aliceNow = await running.engine.validate(aliceCookie);
    assert.ok(aliceNow.valid);
    const aliceId = aliceNow.session.id;
    const cast = '{"version":2,"width":80,"height":24}\n[0.1,"o","hi <b>there</b>\\r\\n"]\n';
    mkdirSync(join(dir, 'recordings'), { recursive: true });
    writeFileSync(join(dir, 'recordings', `${aliceId}-0.cast`), cast);
    await page.getByRole('button', { name: 'Details of the session of alice from 127.0.0.1' }).click();
    const detail = page.getByRole('region', { name: /Session of alice/ });
    await detail.waitFor();
    assert.equal(await page.evaluate('document.activeElement?.id'), 'detail-title');
    const pw = detail.getByRole('row', { name: /session\.logon\.last\.password/ });
    assert.equal((await pw.getByRole('cell').textContent())?.trim(), '********');
    assert.ok(!(await page.content()).includes('wonderland'), 'the password is not on the page');

    // Its SSH recording, as a download link that works with the page's cookie.
    const link = detail.getByRole('link', { name: `Channel 0 (${Buffer.byteLength(cast)} B)` });
    await link.waitFor();
    const href = await link.getAttribute('href');
    assert.equal(href, `/api/v1/sessions/${aliceId}/recordings/0`);
    const download = await page.evaluate(async (url) => {
      const res = await fetch(url);
      return { status: res.status, text: await res.text(), name: res.headers.get('content-disposition') };
    }, href);
    assert.deepEqual(download, {
      status: 200,
      text: cast,
      name: `attachment; filename="${aliceId}-0.cast"`,
    });
    const audited = readFileSync(join(dir, 'audit.log'), 'utf8');
    assert.match(
      audited,
      new RegExp(`"event":"recording_read","session_id":"${aliceId}".*"by":"admin_page"`),
    );

    // Kill it (the confirm dialog is accepted); it disappears from the table.
    await detail.getByRole('button', { name: 'Kill this session' }).click();
    await aliceRow.waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'Killed the session of alice' }).waitFor();
    assert.equal(await detail.isHidden(), true);

    // The gateway refuses the killed session's cookie: back to the logon form.
    const v = await running.engine.validate(aliceCookie);
    assert.equal(v.valid, false);
    const after = await alice.fetch('/app');
    assert.match(await after.text(), /<form method="post" action="\/sg\/logon">/);

    // "Kill all of this user" from bob's detail panel.
    await page.getByRole('button', { name: 'Details of the session of bob from 127.0.0.1' }).click();
    await page.getByRole('region', { name: /Session of bob/ }).waitFor();
    assert.equal(await page.locator('#detail-recordings').isHidden(), true, 'bob has no recordings');
    await page.getByRole('button', { name: 'Kill all sessions of this user' }).click();
    await page.getByRole('status').filter({ hasText: 'Killed 1 session(s) of bob' }).waitFor();
    assert.match(await (await bob.fetch('/app')).text(), /<form/);

    // Log out: the cookie no longer works.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByText('You are logged out.').waitFor();
    const status = await page.evaluate(async () => (await fetch('/api/v1/stats')).status);
    assert.equal(status, 401);
  });

  it('names a close subscriber that is behind above the table', async () => {
    await running.engine.onClose('plugin:hanging', () => new Promise<void>(() => undefined), {
      timeoutMs: 600_000,
    });
    await page.goto(admin.url);
    const tokenField = page.getByLabel('Admin token');
    await tokenField.waitFor();
    await tokenField.fill(readFileSync(join(dir, 'admin.token'), 'utf8').trim());
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('table', { name: /Sessions, refreshed/ }).waitFor();
    assert.equal(await page.locator('#pipeline').isHidden(), true, 'nothing behind yet');

    const alice = await logon('alice', 'wonderland');
    const v = await running.engine.validate(alice.jar.get('MRHSession')!);
    assert.ok(v.valid);
    await running.engine.close(v.session.id, 'admin_kill');
    const line = page.locator('#pipeline');
    await line.filter({ hasText: /plugin:hanging \d+s behind, 1 pending/ }).waitFor();
    assert.doesNotMatch((await line.textContent()) ?? '', /audit/, 'the audit trail delivered its record');
  });
});
