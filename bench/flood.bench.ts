/**
 * Session flood measurement (npm run bench:flood): 100,000 cookieless requests from one
 * address (loopback only, bounded loop) against a gateway started with the configuration
 * `sessiongate init` writes and with the quickstart's (examples/quickstart), each on its own
 * SQLite file as those configurations have it. Reports the time, the sessions the store holds
 * afterwards (the per-address bound, max_in_progress_per_client_ip: 20 with evict_oldest by
 * default), the close records the flood left for the close pipeline, the database size, and
 * whether a browser's logon from the flooding address still works after. BENCH_QUICK=1 sends
 * 10,000. BENCH_FLOOD_N sets the count; BENCH_FLOOD_NO_AUDIT=1 runs without the audit trail's
 * close subscriber (to see what the close pipeline costs).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { starterConfig } from '../src/cli/init-command.js';
import { silentLogger } from '../src/core/logger.js';
import { startGateway } from '../src/gateway/assemble.js';
import { parseConfig } from '../src/gateway/config/load.js';
import { hashPassword } from '../src/plugins/builtin/password.js';

const N = Number(process.env.BENCH_FLOOD_N ?? (process.env.BENCH_QUICK === '1' ? 10_000 : 100_000));
const PARALLEL = 32;

interface Figures {
  variant: string;
  requests: number;
  seconds: number;
  statuses: Record<number, number>;
  sessions: number;
  inprogress: number;
  closeBacklog: number;
  dbBytes: number;
  browserLogon: boolean;
  resent: number;
}

/**
 * `n` cookieless GETs over PARALLEL keep-alive connections; statuses seen. A request whose
 * reused connection the server closed meanwhile (keep-alive race) is sent again, and counted.
 */
async function flood(url: string, n: number): Promise<{ statuses: Record<number, number>; resent: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL });
  const statuses: Record<number, number> = {};
  let sent = 0;
  let resent = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const accept = i % 2 === 0 ? 'text/html' : 'application/json';
      const req = request(`${url}/page/${i}`, { agent, headers: { accept } }, (res) => {
        statuses[res.statusCode!] = (statuses[res.statusCode!] ?? 0) + 1;
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  const oneOrAgain = async (i: number): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await one(i);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ECONNRESET' || attempt >= 3) throw err;
        resent++;
      }
    }
  };
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (sent < n) await oneOrAgain(sent++);
    }),
  );
  agent.destroy();
  return { statuses, resent };
}

/** A browser's logon from the same address: GET the page, POST the form, GET the page again. */
async function browserLogon(url: string): Promise<boolean> {
  const first = await fetch(`${url}/`, { headers: { accept: 'text/html' }, redirect: 'manual' });
  const cookie = first.headers.getSetCookie()[0]?.split(';')[0] ?? '';
  const logon = await fetch(`${url}/sg/logon`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, origin: url, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'username=demo&password=flood-bench-pw',
  });
  const rotated = logon.headers.getSetCookie()[0]?.split(';')[0] ?? '';
  const after = await fetch(`${url}/`, {
    headers: { cookie: rotated, accept: 'text/html' },
    redirect: 'manual',
  });
  return logon.status === 302 && after.status === 200;
}

async function run(variant: string, configText: string, dir: string, dbFile: string): Promise<Figures> {
  const loaded = parseConfig(configText, join(dir, 'sessiongate.yaml'), dir);
  const gw = await startGateway(loaded, { logger: silentLogger, port: 0 });
  console.error(`${variant}: sending ${N} requests to ${gw.url}`);
  // `serve` always runs the audit trail's close subscriber; its deliveries trim the outbox.
  // BENCH_FLOOD_NO_AUDIT=1 leaves it out (close records then stay in the outbox: the backlog).
  if (process.env.BENCH_FLOOD_NO_AUDIT !== '1') await gw.engine.onClose('audit', () => undefined);
  try {
    const t0 = performance.now();
    const { statuses, resent } = await flood(gw.url, N);
    const seconds = (performance.now() - t0) / 1000;
    await gw.engine.dispatch().catch(() => 0);
    const stats = await gw.store.stats();
    const browser = await browserLogon(gw.url);
    const size = (f: string) => {
      try {
        return statSync(f).size;
      } catch {
        return 0;
      }
    };
    return {
      variant,
      requests: N,
      seconds,
      statuses,
      sessions: stats.sessions,
      inprogress: stats.byState.inprogress,
      closeBacklog: Object.values(stats.outboxPending).reduce((a, b) => a + b, 0),
      dbBytes: size(dbFile) + size(`${dbFile}-wal`),
      browserLogon: browser,
      resent,
    };
  } finally {
    await gw.close(1000);
  }
}

async function main(): Promise<void> {
  const users = `users:\n  demo:\n    password: ${await hashPassword('flood-bench-pw', { N: 1024, r: 8, p: 1 })}\n`;
  const results: Figures[] = [];

  const initDir = mkdtempSync(join(tmpdir(), 'sg-flood-init-'));
  mkdirSync(join(initDir, 'var'));
  writeFileSync(join(initDir, 'var/users.yaml'), users);
  results.push(await run('sessiongate init', starterConfig(), initDir, join(initDir, 'var/sessiongate.db')));
  rmSync(initDir, { recursive: true, force: true });

  // The control: the same configuration without the per-address bound (the old default, 0).
  const offDir = mkdtempSync(join(tmpdir(), 'sg-flood-off-'));
  mkdirSync(join(offDir, 'var'));
  writeFileSync(join(offDir, 'var/users.yaml'), users);
  const off = starterConfig().replace(
    'max_in_progress_per_client_ip: { limit: 20, on_limit: evict_oldest }',
    'max_in_progress_per_client_ip: 0',
  );
  if (off === starterConfig()) throw new Error('the starter config no longer has the per-address setting');
  results.push(
    await run('sessiongate init, limit 0 (before)', off, offDir, join(offDir, 'var/sessiongate.db')),
  );
  rmSync(offDir, { recursive: true, force: true });

  const quickDir = mkdtempSync(join(tmpdir(), 'sg-flood-quick-'));
  writeFileSync(join(quickDir, 'users.yaml'), users);
  const quick = readFileSync(new URL('../examples/quickstart/sessiongate.yaml', import.meta.url), 'utf8')
    .replaceAll('../../var/users.yaml', './users.yaml')
    .replaceAll('../../var/', './');
  results.push(await run('quickstart', quick, quickDir, join(quickDir, 'sessiongate.db')));
  rmSync(quickDir, { recursive: true, force: true });

  console.log(
    `\n${N} cookieless requests from 127.0.0.1, ${PARALLEL} keep-alive connections, SQLite store\n`,
  );
  console.log(
    '| configuration | time (s) | req/s | answers | sessions stored | in progress | close backlog | db + wal | browser logon after | resent (keep-alive race) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const answers = Object.entries(r.statuses)
      .map(([s, n]) => `${n}× ${s}`)
      .join(', ');
    console.log(
      `| ${r.variant} | ${r.seconds.toFixed(1)} | ${Math.round(r.requests / r.seconds)} | ${answers} | ${r.sessions} | ${r.inprogress} | ${r.closeBacklog} | ${(r.dbBytes / 1024).toFixed(0)} KiB | ${r.browserLogon ? 'yes' : 'NO'} | ${r.resent} |`,
    );
  }
}

await main();
