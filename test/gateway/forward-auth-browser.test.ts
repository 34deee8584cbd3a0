// Headless Chromium through forward-auth behind a real nginx: the application's page sends the
// browser to the gateway's logon (nginx's error_page on the 401 of auth_request), the user logs
// on, and lands on the page asked for, which nginx then serves with the user's identity.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { BrowserContext } from 'playwright-core';
import { chromiumSkip, launchChromium } from '../support/chromium.js';
import { forwardAuthServer, nginxRequired, nginxSkip, startNginx, type Nginx } from '../support/nginx.js';
import { startTestGateway, testUpstream, type GatewayFixture } from './harness.js';

const CONFIG = `
store: memory
keys: \${DIR}/keyring.json
trusted_proxies: [127.0.0.1]
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    policy: [ logon, { authenticate: users }, allow ]
    identity_headers: { X-Remote-User: session.logon.last.username }
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
`;

const noNginx = nginxSkip();
if (noNginx && nginxRequired()) throw new Error(noNginx);
const skip = noNginx || chromiumSkip();

let fx: GatewayFixture;
let nginx: Nginx;
let app: Server;
let placeholder: Awaited<ReturnType<typeof testUpstream>>;
let context: BrowserContext;

before(async () => {
  if (skip) return;
  app = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    const user = String(req.headers['x-remote-user'] ?? 'nobody').replace(/[^a-z]/g, '');
    res.end(
      `<!doctype html><title>App</title><h1>Hello ${user}</h1><p>${req.url?.replace(/[<>&]/g, '')}</p>`,
    );
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  placeholder = await testUpstream(); // the route's own upstream: never used in this mode
  fx = await startTestGateway(CONFIG, { UPSTREAM: placeholder.url });
  const appAt = `127.0.0.1:${(app.address() as AddressInfo).port}`;
  nginx = await startNginx((port) =>
    forwardAuthServer({ port, gateway: new URL(fx.gw.url).host, app: appAt, identity: ['X-Remote-User'] }),
  );
  context = await launchChromium();
});

after(async () => {
  if (skip) return;
  await context?.close();
  await nginx?.stop();
  await fx?.close();
  await placeholder?.close();
  await new Promise<void>((r) => app?.close(() => r()));
});

describe('headless Chromium through forward-auth behind nginx', { skip }, () => {
  it('application page → gateway logon → back to the page, served by nginx with the identity', async () => {
    const page = await context.newPage();
    await page.goto(`${nginx.url}/reports/q3?year=2026`);
    await page.getByRole('heading', { name: /^Log on to/ }).waitFor();
    assert.ok(page.url().startsWith(`${nginx.url}/sg/auth/logon?rd=`), page.url());
    await page.getByLabel('User name').fill('alice');
    await page.getByLabel('Password').fill('wonderland');
    await page.getByRole('button', { name: 'Log on' }).click();
    await page.waitForURL(`${nginx.url}/reports/q3?year=2026`);
    await page.getByRole('heading', { name: 'Hello alice' }).waitFor();
    // A second page of the application: no logon again.
    await page.goto(`${nginx.url}/reports/q4`);
    await page.getByRole('heading', { name: 'Hello alice' }).waitFor();
  });
});
