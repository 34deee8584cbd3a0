/**
 * Engine benchmarks (npm run bench:engine): ops/s of the ACCESS::session verbs on the memory
 * and sqlite stores, memory per session at 1M sessions, and sweep cost for 10k vs 100k due
 * sessions among 1M. Every figure is the median of RUNS runs with its min–max spread.
 * BENCH_QUICK=1 shrinks everything for a smoke run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../src/core/clock.js';
import type { SessionId, SessionToken } from '../src/core/ids.js';
import { SessionEngine } from '../src/session/engine.js';
import { Keyring } from '../src/session/keyring.js';
import type { SessionStore } from '../src/store/contract.js';
import { MemoryStore } from '../src/store/memory/store.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import { fmt, gc, median, opsPerSecond, summary } from './stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = QUICK ? 2 : 5;
const POOL = 1000;
const dir = mkdtempSync(join(tmpdir(), 'sg-bench-'));

type Kind = 'memory' | 'sqlite';
function openStore(kind: Kind, name: string): SessionStore {
  return kind === 'memory' ? new MemoryStore() : SqliteStore.open(join(dir, `${name}.db`));
}

async function verbs(kind: Kind): Promise<Record<string, number[]>> {
  const n = (memory: number, sqlite: number) =>
    QUICK ? Math.ceil((kind === 'memory' ? memory : sqlite) / 20) : kind === 'memory' ? memory : sqlite;
  const out: Record<string, number[]> = {};
  const add = (k: string, v: number) => (out[k] ??= []).push(v);
  for (let run = 0; run < RUNS; run++) {
    const store = openStore(kind, `verbs-${run}`);
    const clock = new ManualClock(Date.now());
    const engine = new SessionEngine({ store, keyring: Keyring.ephemeral(), clock });
    const created: { id: SessionId; token: SessionToken }[] = [];
    add(
      'create',
      await opsPerSecond(n(100_000, 20_000), async () =>
        created.push(await engine.create({ state: 'allow' })),
      ),
    );
    const pool = created.slice(0, POOL);
    // Coalesced: the clock stands still, so touches within the 1 s resolution are not written.
    add(
      'validate (coalesced touch)',
      await opsPerSecond(n(500_000, 100_000), (i) => engine.validate(pool[i % POOL]!.token)),
    );
    add(
      'validate (touch written)',
      await opsPerSecond(n(200_000, 20_000), (i) => {
        clock.advance(1); // each pooled session comes back every POOL ms: every call writes a touch
        return engine.validate(pool[i % POOL]!.token);
      }),
    );
    add(
      'data.set',
      await opsPerSecond(n(200_000, 20_000), (i) =>
        engine.data.set(pool[i % POOL]!.id, 'session.custom.n', String(i)),
      ),
    );
    add(
      'data.get',
      await opsPerSecond(n(500_000, 100_000), (i) => engine.data.get(pool[i % POOL]!.id, 'session.custom.n')),
    );
    add(
      'data.set -secure',
      await opsPerSecond(n(100_000, 20_000), (i) =>
        engine.data.set(pool[i % POOL]!.id, 'session.s', String(i), { secure: true }),
      ),
    );
    const toClose = created.slice(POOL);
    add(
      'remove (close into outbox)',
      await opsPerSecond(Math.min(toClose.length, n(50_000, 10_000)), (i) => engine.remove(toClose[i]!.id)),
    );
    await store.dispose();
  }
  return out;
}

async function memoryPerSession(): Promise<{ heap: number; rss: number; count: number }> {
  const count = QUICK ? 50_000 : 1_000_000;
  const clock = new ManualClock(Date.now());
  const store = new MemoryStore();
  const engine = new SessionEngine({ store, keyring: Keyring.ephemeral(), clock });
  gc();
  const before = process.memoryUsage();
  for (let i = 0; i < count; i++) {
    await engine.create({
      state: 'allow',
      user: `user${i % 50_000}`,
      clientIp: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      variables: {
        'session.custom.a': 'alpha',
        'session.custom.b': String(i),
        'session.custom.c': 'blue',
        'session.custom.d': 'x',
        'session.custom.e': 'yes',
      },
    });
  }
  gc();
  const after = process.memoryUsage();
  const result = {
    heap: (after.heapUsed - before.heapUsed) / count,
    rss: (after.rss - before.rss) / count,
    count,
  };
  await store.dispose();
  return result;
}

async function sweep(kind: Kind, total: number, due: number, run: number): Promise<number> {
  const store = openStore(kind, `sweep-${total}-${due}-${run}`);
  const clock = new ManualClock(Date.now());
  const engine = new SessionEngine({ store, keyring: Keyring.ephemeral(), clock });
  for (let i = 0; i < total; i++)
    await engine.create({ state: 'allow', timeout: i < due ? 60 : 3600, lifetime: 0 });
  clock.advance(61_000);
  const t = performance.now();
  const closed = await engine.sweep();
  const ms = performance.now() - t;
  if (closed !== due) throw new Error(`sweep closed ${closed}, expected ${due}`);
  await store.dispose();
  return ms;
}

async function main(): Promise<void> {
  console.log(
    `sessiongate engine benchmark — ${RUNS} runs each, median (min–max, spread)${QUICK ? ' [QUICK]' : ''}`,
  );
  console.log(`node ${process.version}, ${process.platform}/${process.arch}\n`);
  for (const kind of ['memory', 'sqlite'] as const) {
    const res = await verbs(kind);
    console.log(`## ${kind} store (ops/s, one process, sequential awaits)`);
    for (const [name, values] of Object.entries(res)) console.log(`  ${name.padEnd(28)} ${summary(values)}`);
    console.log('');
  }
  const mem = await memoryPerSession();
  console.log(
    `## memory per session (memory store, ${fmt(mem.count)} sessions, 5 short variables + 2 standard)`,
  );
  console.log(`  heap ${fmt(mem.heap)} B/session, RSS ${fmt(mem.rss)} B/session\n`);
  const total = QUICK ? 100_000 : 1_000_000;
  for (const kind of ['memory', 'sqlite'] as const) {
    const runs = kind === 'memory' ? RUNS : QUICK ? 1 : 2;
    const small: number[] = [];
    const large: number[] = [];
    for (let r = 0; r < runs; r++) {
      small.push(await sweep(kind, total, total / 100, r));
      large.push(await sweep(kind, total, total / 10, r));
    }
    const ratio = median(large) / median(small);
    console.log(`## sweep on ${kind}: due sessions among ${fmt(total)} (ms, ${runs} runs)`);
    console.log(`  ${fmt(total / 100)} due: ${summary(small, 1)}`);
    console.log(
      `  ${fmt(total / 10)} due: ${summary(large, 1)}   ratio ${ratio.toFixed(1)}x for 10x the due sessions\n`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
}

await main();
