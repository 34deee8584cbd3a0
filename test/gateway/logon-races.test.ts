import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { recordingLogger } from '../plugins/helpers.js';
import { basic, Browser, testUpstream } from './harness.js';

// Concurrent logon attempts on one in-progress session: the third wrong password ends the
// policy in deny while the other attempts are still running. Each of those gets the answer the
// ending implies (the deny page, or a fresh logon), never a 500.

const CONFIG = `
store: sqlite:\${DIR}/sessions.db
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
profiles:
  default:
    max_logon_attempts: 3
    # The failure delay keeps the other attempts in flight while the third one ends the policy.
    failure_delay_ms: { min: 5, max: 40 }
    # Off: here the policy's own attempt limit is what ends the logons.
    logon_throttle:
      per_user_address: { limit: 0, window: 900 }
      per_user: { limit: 0, window: 3600 }
      per_address: { limit: 0, window: 900 }
    policy: [logon, { authenticate: users }, allow]
  ended:
    cookie: { name: EndedSession }
    policy: [logon, { authenticate: users }, allow]
routes:
  - { match: { path: / }, upstream: \${UPSTREAM} }
  - { match: { path: /ended }, upstream: \${UPSTREAM}, profile: ended, rules: [\${FIXTURES}/end-at-policy-completed.ts] }
`;

let fx: { gw: RunningGateway; logs: ReturnType<typeof recordingLogger>; dir: string };
let upstream: Awaited<ReturnType<typeof testUpstream>>;

// Not the shared harness: it turns the failure delay off, and this race needs it.
before(async () => {
  upstream = await testUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'sg-races-'));
  const hash = await hashPassword('wonderland', { N: 1024, r: 8, p: 1 });
  writeFileSync(join(dir, 'users.yaml'), `users:\n  alice:\n    password: ${hash}\n`);
  const text = CONFIG.replaceAll('${DIR}', dir)
    .replaceAll('${UPSTREAM}', upstream.url)
    .replaceAll('${FIXTURES}', join(import.meta.dirname, 'fixtures'));
  const logs = recordingLogger();
  const gw = await startGateway(parseConfig(text, 'test.yaml', dir), { logger: logs, port: 0 });
  fx = { gw, logs, dir };
});
after(async () => {
  await fx.gw.close(1000);
  rmSync(fx.dir, { recursive: true, force: true });
  await upstream.close();
});

const SESSIONS = 5;
const ATTEMPTS = 8;

/** Statuses of every attempt, and the request-failed log lines they caused. */
function failures(): string[] {
  return fx.logs.lines
    .filter((l) => l.level === 'error')
    .map((l) => `${l.message} ${JSON.stringify(l.fields)}`);
}

describe('concurrent wrong passwords on one in-progress session', () => {
  it('form posts: each gets a logon page, a deny page or a redirect; none a 500', async () => {
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: SESSIONS }, async () => {
        const b = new Browser(fx.gw.url);
        assert.ok([200, 302].includes((await b.fetch('/app')).status));
        const answers = await Promise.all(
          Array.from({ length: ATTEMPTS }, () =>
            b.form('/sg/logon', { username: 'alice', password: 'nope' }),
          ),
        );
        for (const r of answers) {
          statuses.push(r.status);
          await r.arrayBuffer();
        }
      }),
    );
    assert.deepEqual(
      statuses.filter((s) => ![200, 302, 403].includes(s)),
      [],
      `statuses: ${statuses.join(',')}`,
    );
    assert.ok(statuses.includes(403), 'the policy ended in deny at least once');
    assert.deepEqual(failures(), []);
  });

  it('HTTP Basic: each gets 401 or 403; none a 500', async () => {
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: SESSIONS }, async () => {
        const b = new Browser(fx.gw.url, 'application/json');
        const first = await b.fetch('/api');
        assert.equal(first.status, 401);
        await first.arrayBuffer();
        const answers = await Promise.all(
          Array.from({ length: ATTEMPTS }, () =>
            b.fetch('/api', { headers: { authorization: basic('alice', 'nope') } }),
          ),
        );
        for (const r of answers) {
          statuses.push(r.status);
          await r.arrayBuffer();
        }
      }),
    );
    assert.deepEqual(
      statuses.filter((s) => ![401, 403].includes(s)),
      [],
      `statuses: ${statuses.join(',')}`,
    );
    assert.ok(statuses.includes(403), 'the policy ended in deny at least once');
    assert.deepEqual(failures(), []);
  });

  it('the right password among wrong ones: allowed, denied or asked again; none a 500', async () => {
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: SESSIONS }, async () => {
        const b = new Browser(fx.gw.url);
        await (await b.fetch('/app')).arrayBuffer();
        const answers = await Promise.all(
          Array.from({ length: ATTEMPTS }, (_, i) =>
            b.form('/sg/logon', { username: 'alice', password: i === 3 ? 'wonderland' : 'nope' }),
          ),
        );
        for (const r of answers) {
          statuses.push(r.status);
          await r.arrayBuffer();
        }
      }),
    );
    assert.deepEqual(
      statuses.filter((s) => ![200, 302, 403].includes(s)),
      [],
      `statuses: ${statuses.join(',')}`,
    );
    assert.deepEqual(failures(), []);
  });

  it('a session ended as its policy completes: a deny page, logged as no failure', async () => {
    const b = new Browser(fx.gw.url);
    await (await b.fetch('/ended/x')).arrayBuffer();
    const form = await b.form('/sg/logon', { username: 'alice', password: 'wonderland' });
    assert.equal(form.status, 403, await form.text());
    const api = await fetch(`${fx.gw.url}/ended/y`, {
      headers: { accept: 'application/json', authorization: basic('alice', 'wonderland') },
    });
    assert.equal(api.status, 403, await api.text());
    assert.deepEqual(failures(), []);
  });

  it('the right password racing other names: the allowed session names the user who logged on', async () => {
    const mismatches: string[] = [];
    for (let trial = 0; trial < 15; trial++) {
      const b = new Browser(fx.gw.url, 'application/json');
      await (await b.fetch('/api')).arrayBuffer();
      const token = b.jar.get('MRHSession')!;
      const answers = await Promise.all(
        [basic('alice', 'wonderland'), basic('mallory', 'x'), basic('mallory', 'y')].map(async (auth) => {
          const r = await fetch(`${fx.gw.url}/api`, {
            headers: { accept: 'application/json', cookie: `MRHSession=${token}`, authorization: auth },
          });
          await r.arrayBuffer();
          return r;
        }),
      );
      const allowed = answers.find((r) => r.status === 200);
      if (!allowed) continue;
      const cookie = allowed.headers.getSetCookie().findLast((c) => c.startsWith('MRHSession='))!;
      const id = fx.gw.engine.sid(cookie.split(';')[0]!.slice('MRHSession='.length));
      const user = (await fx.gw.engine.get(id))?.user;
      const name = await fx.gw.engine.data.get(id, 'session.logon.last.username');
      if (user !== 'alice' || name !== 'alice') mismatches.push(`user ${user}, last.username ${name}`);
    }
    assert.deepEqual(mismatches, []);
  });

  it('a logon still works afterwards', async () => {
    const b = new Browser(fx.gw.url);
    await b.fetch('/app');
    assert.equal((await b.form('/sg/logon', { username: 'alice', password: 'wonderland' })).status, 302);
    assert.equal((await b.fetch('/app')).status, 200);
  });
});
