/**
 * Redis store benchmark (npm run bench:store): validate (coalesced touch) and create ops/s from
 * ONE Node process against a standalone redis-server and a 3+3 cluster, both started here on
 * loopback, beside `redis-benchmark -t get,set` (with and without -P 16) on the same standalone
 * server as the ceiling. Many calls are kept in flight (IN_FLIGHT async callers): ioredis's
 * auto-pipelining sends everything issued in one event-loop tick as one write, which is how one
 * process gets far past one round trip per call. Every figure is the median of RUNS runs with
 * its min–max spread. BENCH_QUICK=1 shrinks everything for a smoke run.
 */
import { spawnSync } from 'node:child_process';
import { Cluster } from 'ioredis';
import { newToken, type SessionId } from '../src/core/ids.js';
import type { NewSession } from '../src/store/contract.js';
import { RedisStore } from '../src/store/redis/store.js';
import {
  startCluster,
  startRedis,
  type RedisCluster,
  type RedisServer,
} from '../test/support/redis-servers.js';
import { fmt, median, summary } from './stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const RUNS = QUICK ? 2 : 5;
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 512);
const POOL = 10_000;
const N = { validate: QUICK ? 20_000 : 300_000, create: QUICK ? 5_000 : 60_000 };

function session(now: number): NewSession {
  return {
    id: newToken().id,
    state: 'allow',
    user: null,
    clientIp: '10.1.2.3',
    profile: 'default',
    createdAt: now,
    lastAccessAt: now,
    idleTimeout: 900,
    lifetime: 28_800,
    lifetimeDeadline: now + 28_800_000,
    policyDeadline: null,
    variables: { 'session.policy.result': 'allowed', 'session.custom.team': 'blue' },
    secure: {},
    cookies: {},
    sessionCookie: {},
  };
}

/** `n` calls of `op(i)` with `IN_FLIGHT` of them outstanding at any time; ops/s. */
async function concurrent(n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) await op(next++);
    }),
  );
  return n / ((performance.now() - t) / 1000);
}

async function measure(url: string): Promise<{ validate: number[]; create: number[] }> {
  const out = { validate: [] as number[], create: [] as number[] };
  for (let run = 0; run < RUNS; run++) {
    const store = await RedisStore.open(`${url}?prefix=bench${run}x${Date.now()}`);
    const now = Date.now();
    out.create.push(await concurrent(N.create, () => store.create(session(now), {}, now)));
    const pool: SessionId[] = [];
    for (let i = 0; i < POOL; i += 1000) {
      const batch = Array.from({ length: 1000 }, () => session(now));
      await Promise.all(batch.map((s) => store.create(s, {}, now)));
      pool.push(...batch.map((s) => s.id));
    }
    // The clock stands still, so every touch is within the 1 s resolution: nothing is written.
    out.validate.push(
      await concurrent(N.validate, async (i) => {
        const r = await store.validate(pool[i % POOL]!, now + 10, 1000);
        if (r.status !== 'valid') throw new Error(`session ${pool[i % POOL]} is ${r.status}`);
      }),
    );
    // Each run starts from an empty server: earlier runs' sessions would only slow later ones.
    const masters = store.client instanceof Cluster ? store.client.nodes('master') : [store.client];
    await Promise.all(masters.map((m) => m.flushall()));
    await store.dispose();
  }
  return out;
}

/** redis-benchmark's own figures (requests/s) for GET and SET. */
function redisBenchmark(port: number, pipeline: number): { get: number; set: number } {
  const args = [
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-q',
    '-n',
    QUICK ? '20000' : '200000',
    '-t',
    'get,set',
  ];
  if (pipeline > 1) args.push('-P', String(pipeline));
  const text = spawnSync('redis-benchmark', args, { encoding: 'utf8' }).stdout;
  const rate = (name: string) =>
    Number(new RegExp(`^${name}: ([\\d.]+) requests per second`, 'm').exec(text)?.[1] ?? NaN);
  return { get: rate('GET'), set: rate('SET') };
}

async function main(): Promise<void> {
  let standalone: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  try {
    [standalone, cluster] = await Promise.all([startRedis(), startCluster()]);
    console.log(
      `sessiongate redis store benchmark — ${RUNS} runs each, median (min–max, spread)${QUICK ? ' [QUICK]' : ''}`,
    );
    const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim();
    console.log(
      `node ${process.version}, ${version.split(' ').slice(0, 3).join(' ')}; ${IN_FLIGHT} calls in flight from one process\n`,
    );
    const ceiling = { get: [] as number[], set: [] as number[], getP: [] as number[], setP: [] as number[] };
    for (let run = 0; run < Math.min(RUNS, 3); run++) {
      const plain = redisBenchmark(standalone.port, 1);
      const piped = redisBenchmark(standalone.port, 16);
      ceiling.get.push(plain.get);
      ceiling.set.push(plain.set);
      ceiling.getP.push(piped.get);
      ceiling.setP.push(piped.set);
    }
    const single = await measure(standalone.url);
    const multi = await measure(cluster.url);
    const row = (what: string, values: number[]) => console.log(`| ${what} | ${summary(values)} |`);
    console.log('| what (ops/s) | median (min–max, spread) |');
    console.log('| --- | --- |');
    row('validate, coalesced touch — standalone', single.validate);
    row('validate, coalesced touch — cluster 3+3', multi.validate);
    row('create — standalone', single.create);
    row('create — cluster 3+3', multi.create);
    row('redis-benchmark GET (50 clients)', ceiling.get);
    row('redis-benchmark SET (50 clients)', ceiling.set);
    row('redis-benchmark GET -P 16', ceiling.getP);
    row('redis-benchmark SET -P 16', ceiling.setP);
    const ratio = median(multi.validate) / median(single.validate);
    console.log(
      `\nvalidate: standalone ${fmt(median(single.validate))}/s (target ≥ 80,000), cluster ${(ratio * 100).toFixed(0)}% of it (target ≥ 80%)`,
    );
  } finally {
    await Promise.all([standalone?.stop(), cluster?.stop()]);
  }
}

await main();
