/**
 * sessiongate against a bare proxy and against express-session (npm run bench:gateway;
 * issues 5 and 6). In one run, interleaved with the bare proxy between every two runs
 * (A B A C A D ... A H A, then the next round), autocannon with 50 connections GETs a 12-byte
 * upstream answer through:
 *
 *   A  bare proxy: node:http + sessiongate's Upstream.forward(), no session work (the limit);
 *   B  sessiongate, memory store;
 *   C  sessiongate, sqlite store (temporary file);
 *   D  sessiongate, redis store (a redis-server started here on a free port);
 *   E  express + express-session + connect-redis + http-proxy-middleware on the same redis:
 *      signed cookie checked, session loaded, rolling expiry, X-USERNAME added, proxied;
 *   F  D with the four example rules (examples/rules/*.ts) loaded as global rules;
 *   G  B with the same rules: the rules' own cost, without the extra store round trips;
 *   H  D with `nearCache=0`: every validation asks Redis (what the near cache saves);
 *   I  a second bare proxy, the same code as A in its own process: the control. Its ratio to
 *      A is what the method reads when there is no difference to find (the machine's noise);
 *   J  B with OpenID Connect sessions: the pool signed in through a real oidc-provider that runs
 *      in the gateway's process (any per-request provider work would show in its CPU time);
 *      compared with B, it shows what an SSO session costs per request over a plain one.
 *
 * Every request carries one of 1,000 real logged-on sessions (round-robin over the pool), so
 * each one validates a session, refreshes its idle expiry and is proxied. p50 and p99 come from
 * every 2xx response's own time (autocannon's 'response' event) at full resolution: autocannon's
 * histogram keeps whole milliseconds, and with a p99 of 7–12 ms one step is 8–14%. Every server runs
 * in its own process (bench/gateway/child.ts); autocannon runs in this one. The CPU time per
 * request of each process (server, upstream, redis-server, autocannon) is measured around
 * each run, to show where the machine's cores go.
 *
 * BENCH_QUICK=1: one round of 2 s (smoke run). BENCH_VARIANTS=A,D,F limits the variants;
 * BENCH_ROUNDS and BENCH_SECONDS set the rounds and the seconds per run.
 * BENCH_PROFILE=DIR writes a V8 CPU profile of every child process into DIR (--cpu-prof).
 * Without redis-server on PATH, D and E are skipped and F runs on the memory store.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { DEFAULT_SEMI_SPACE_MB, serveV8Flags } from '../src/cli/relaunch.js';
import { newToken } from '../src/core/ids.js';
import { rawCommand, redisSkip, startRedis, type RedisServer } from '../test/support/redis-servers.js';
import {
  BODY,
  CLIENT_IP,
  POOL,
  type ChildMessage,
  type ChildReply,
  type ExpressArgs,
  type GcTotals,
  type SessiongateArgs,
} from './gateway/common.js';
import { fmt, Latencies, median } from './stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
const DURATION = Number(process.env.BENCH_SECONDS ?? (QUICK ? 2 : 8));
const WARMUP = QUICK ? 1 : 2;
/** Unmeasured seconds of load just before each measured run (BENCH_RESUME). */
const RESUME = Number(process.env.BENCH_RESUME ?? 1);
const CONNECTIONS = 50;
/**
 * V8 flags of every server process, A, E and I included: by default the ones `sessiongate
 * serve` gives its own processes (fixed semi-spaces, no memory reducer; docs/gateway.md,
 * "Throughput"), so that the gateway runs as it ships and the others on the same terms.
 * BENCH_NODE_FLAGS= (empty) for V8's defaults, or any flags of your choosing.
 */
const NODE_FLAGS =
  process.env.BENCH_NODE_FLAGS === undefined
    ? serveV8Flags({ semiSpaceMb: DEFAULT_SEMI_SPACE_MB, memoryReducer: false }, [], undefined)
    : process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean);
const PATH = '/app/page?x=1';

const here = dirname(fileURLToPath(import.meta.url));
const childEntry = join(here, 'gateway', 'child.ts');
const exampleRules = ['mrhsession-401.ts', 'subnet.ts', 'x-username.ts', 'last-logon.ts'].map((f) =>
  resolve(here, '..', 'examples', 'rules', f),
);

type Key = 'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H' | 'I' | 'J';

interface Server {
  key: Key;
  label: string;
  child: ChildProcess;
  port: number;
  /** `name=value` session cookies, one per pool entry. */
  cookies: string[];
  /** The redis-server this variant's requests reach, if any (its CPU is counted). */
  redis?: RedisServer;
  /** X-USERNAME reaches the upstream. */
  addsUser: boolean;
  /** Needs a session: a request without one is refused. */
  checksSession: boolean;
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  /** autocannon's own p99, in whole milliseconds (for comparison with earlier runs). */
  p99Whole: number;
  errors: number;
  /** CPU µs per request of each process. */
  cpu: { server: number; upstream: number; redis: number; bench: number };
  /** The server process's garbage collections per 1,000 requests: counts, and ms paused. */
  gc: GcTotals;
  /** The server process's peak resident memory so far, MB. */
  peakRssMb: number;
}

/** A variant's bare-proxy reference in one round: the mean of the A runs on its two sides. */
interface Reference {
  rps: number;
  p99: number;
}

// ---- child processes -----------------------------------------------------------------------

function startChild(
  role: string,
  args: object,
): Promise<{ child: ChildProcess; port: number; cookies: string[] }> {
  return new Promise((ok, fail) => {
    const prof = process.env.BENCH_PROFILE
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
      : [];
    const child = spawn(
      process.execPath,
      [...prof, ...NODE_FLAGS, '--import', 'tsx', childEntry, role, JSON.stringify(args)],
      {
        stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      },
    );
    let out = '';
    const onExit = (code: number | null) => fail(new Error(`child ${role} exited with ${code}`));
    child.once('exit', onExit);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const nl = out.indexOf('\n', out.indexOf('READY '));
      if (out.includes('READY ') && nl > 0) {
        const line = out.slice(out.indexOf('READY ') + 6, nl);
        const { port, cookies } = JSON.parse(line) as { port: number; cookies: string[] };
        child.off('exit', onExit);
        child.stdout?.removeAllListeners('data');
        child.stdout?.resume();
        ok({ child, port, cookies });
      }
    });
  });
}

function ask(child: ChildProcess, m: ChildMessage): Promise<ChildReply> {
  return new Promise((ok) => {
    child.once('message', (r) => ok(r as ChildReply));
    child.send(m);
  });
}

const NO_GC: GcTotals = { minor: 0, major: 0, ms: 0 };

async function usageOf(child: ChildProcess): Promise<{ us: number; gc: GcTotals; peakRssMb: number }> {
  const r = await ask(child, { type: 'cpu' });
  return r.type === 'cpu' ? r : { us: 0, gc: NO_GC, peakRssMb: 0 };
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU time (µs) of a process that is not ours to ask (redis-server), from /proc. */
function procCpu(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / CLK_TCK;
  } catch {
    return 0;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 6000);
  await exited;
  clearTimeout(timer);
}

// ---- load ------------------------------------------------------------------------------

async function load(s: Server, upstream: ChildProcess, duration: number): Promise<Sample> {
  const redisPid = s.redis?.pid;
  const [server0, up0] = [await usageOf(s.child), await usageOf(upstream)];
  const redis0 = redisPid ? procCpu(redisPid) : 0;
  const self0 = process.cpuUsage();
  let next = 0;
  const latencies = new Latencies();
  const instance = autocannon({
    url: `http://127.0.0.1:${s.port}${PATH}`,
    connections: CONNECTIONS,
    duration,
    requests: [
      {
        method: 'GET',
        path: PATH,
        setupRequest: (req) => {
          const cookie = s.cookies[next++ % s.cookies.length]!;
          req.headers = {
            ...req.headers,
            cookie: `${cookie}; theme=dark`,
            'user-agent': 'bench',
            'x-forwarded-for': CLIENT_IP,
          };
          return req;
        },
      },
    ],
    // Without a callback autocannon returns its instance, an EventEmitter that is also a promise.
  }) as Promise<autocannon.Result> & EventEmitter;
  // Every 2xx response's time, at full resolution (autocannon's percentiles are whole ms).
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latencies.add(ms);
  });
  const r = await instance;
  const self = process.cpuUsage(self0);
  const [server1, up1] = [await usageOf(s.child), await usageOf(upstream)];
  const redis1 = redisPid ? procCpu(redisPid) : 0;
  const n = Math.max(1, r.requests.total);
  return {
    rps: r.requests.average,
    p50: latencies.percentile(50),
    p99: latencies.percentile(99),
    p99Whole: r.latency.p99,
    errors: r.errors + r.timeouts + r.non2xx,
    cpu: {
      server: (server1.us - server0.us) / n,
      upstream: (up1.us - up0.us) / n,
      redis: (redis1 - redis0) / n,
      bench: (self.user + self.system) / n,
    },
    gc: {
      minor: ((server1.gc.minor - server0.gc.minor) * 1000) / n,
      major: ((server1.gc.major - server0.gc.major) * 1000) / n,
      ms: ((server1.gc.ms - server0.gc.ms) * 1000) / n,
    },
    peakRssMb: server1.peakRssMb,
  };
}

// ---- checks: the servers do the work we claim they do ----------------------------------

async function get(port: number, headers: Record<string, string>): Promise<Response> {
  const res = await fetch(`http://127.0.0.1:${port}${PATH}`, {
    headers: { 'user-agent': 'bench', ...headers },
  });
  await res.arrayBuffer();
  return res;
}

function expect(what: string, ok: boolean, detail: string): void {
  if (!ok) throw new Error(`check failed: ${what} (${detail})`);
}

async function check(servers: Server[]): Promise<string[]> {
  const notes: string[] = [];
  const xff = { 'x-forwarded-for': CLIENT_IP };
  for (const s of servers) {
    // x-bench-echo: the upstream answers with the X-USERNAME it saw (only for these checks, so
    // the timed runs carry no extra header).
    const ok = await get(s.port, {
      cookie: `${s.cookies[0] ?? 'x=1'}; theme=dark`,
      'x-bench-echo': '1',
      ...xff,
    });
    expect(`${s.key} answers a session's request`, ok.status === 200, `status ${ok.status}`);
    const seen = ok.headers.get('x-seen-user');
    expect(
      `${s.key} X-USERNAME`,
      s.addsUser ? seen === 'user0' : seen === null,
      `upstream saw X-USERNAME ${JSON.stringify(seen)}`,
    );
    if (s.checksSession) {
      const none = await get(s.port, xff);
      expect(`${s.key} refuses a request without a session`, none.status === 401, `status ${none.status}`);
    }
  }
  for (const f of servers.filter((s) => s.key === 'F' || s.key === 'G')) {
    // mrhsession-401.ts: an MRHSession cookie naming no session gets its 401.
    const bogus = await get(f.port, { cookie: `MRHSession=${newToken().token}`, ...xff });
    const realm = bogus.headers.get('www-authenticate');
    expect(
      `${f.key} unknown MRHSession → 401 of mrhsession-401.ts`,
      realm === 'Basic realm="www.example.com"',
      `${realm}`,
    );
    // subnet.ts: a new session from outside 192.168.255.0/24 is removed (403); from inside it
    // goes on to the logon (401).
    const outside = await get(f.port, { 'x-forwarded-for': '10.0.0.9' });
    const inside = await get(f.port, xff);
    expect(
      `${f.key} subnet.ts removes a session from 10.0.0.9`,
      outside.status === 403,
      `status ${outside.status}`,
    );
    expect(
      `${f.key} subnet.ts keeps a session from 192.168.255.7`,
      inside.status === 401,
      `status ${inside.status}`,
    );
    notes.push(
      `${f.key}: mrhsession-401.ts answers an unknown MRHSession with 401; subnet.ts refuses 10.0.0.9, keeps 192.168.255.7; x-username.ts adds X-USERNAME`,
    );
  }
  // Rolling expiry: a request one second later moves the session's idle deadline.
  const gates = servers.filter((s) => ['B', 'C', 'D', 'F', 'G', 'H', 'J'].includes(s.key));
  const before = new Map<Key, number | null>();
  for (const s of gates) {
    const r = await ask(s.child, { type: 'lastAccess', cookie: s.cookies[1]! });
    before.set(s.key, r.type === 'lastAccess' ? r.at : null);
  }
  const e = servers.find((s) => s.key === 'E');
  const sid = e ? decodeURIComponent(e.cookies[1]!.slice('sid='.length)).slice(2).split('.')[0]! : '';
  await new Promise((r) => setTimeout(r, 1100));
  const ttl = async () =>
    e?.redis ? Number((await rawCommand(e.redis.port, ['TTL', `bench-sess:${sid}`])).replace(/^:/, '')) : 0;
  const ttlBefore = await ttl();
  for (const s of [...gates, ...(e ? [e] : [])]) {
    const res = await get(s.port, { cookie: s.cookies[1]!, ...xff });
    if (s.key === 'E')
      expect('E rolling Set-Cookie', res.headers.getSetCookie().length === 1, 'no Set-Cookie');
  }
  // The redis near cache writes a due touch just after answering (at most 100 ms later).
  await new Promise((r) => setTimeout(r, 300));
  for (const s of gates) {
    const r = await ask(s.child, { type: 'lastAccess', cookie: s.cookies[1]! });
    const after = r.type === 'lastAccess' ? r.at : null;
    const b = before.get(s.key) ?? null;
    expect(`${s.key} touches the session`, b !== null && after !== null && after > b, `${b} → ${after}`);
  }
  if (e) {
    const ttlAfter = await ttl();
    expect('E refreshes the redis TTL', ttlAfter > ttlBefore, `${ttlBefore} → ${ttlAfter}`);
  }
  notes.push(
    `every variant but A refuses a request without a session (401) and moves the idle deadline of the session a request carries${e ? ' (E: new Set-Cookie and redis TTL back to 900 s)' : ''}`,
  );
  return notes;
}

// ---- report ------------------------------------------------------------------------------

function range(values: number[], digits = 0): string {
  return `${fmt(median(values), digits)} (${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)})`;
}

/** Median (min–max) of per-round ratios a_i / b_i. */
function ratio(a: number[], b: number[]): { m: number; text: string } {
  const r = a.map((x, i) => x / b[i]!);
  const m = median(r);
  return { m, text: `${m.toFixed(2)}× (${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)})` };
}

/**
 * `refs`: for each variant, per round, the mean of the A runs just before and just after it.
 * Ratios to A use that reference; ratios between two variants (F vs D) compare each one's
 * ratio to its own A, so drift between the two runs cancels too.
 */
function report(servers: Server[], samples: Map<Key, Sample[]>, refs: Map<Key, Reference[]>): void {
  const of = (k: Key) => samples.get(k) ?? [];
  const rps = (k: Key) => of(k).map((s) => s.rps);
  const p99 = (k: Key) => of(k).map((s) => s.p99);
  const has = (k: Key) => of(k).length > 0;
  const refRps = (k: Key) => (refs.get(k) ?? []).map((s) => s.rps);
  const refP99 = (k: Key) => (refs.get(k) ?? []).map((s) => s.p99);
  /** req/s relative to the variant's own A reference (raw req/s without A). */
  const norm = (k: Key) => (refRps(k).length > 0 ? rps(k).map((x, i) => x / refRps(k)[i]!) : rps(k));
  const cores = cpus().length;
  console.log('');
  console.log('| | variant | req/s, median (min–max) | p50 ms | p99 ms | req/s vs A | p99 vs A | errors |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const s of servers) {
    const ss = of(s.key);
    const vsA = has('A') && s.key !== 'A';
    const cells = [
      s.key,
      s.label,
      range(rps(s.key)),
      range(
        ss.map((x) => x.p50),
        2,
      ),
      range(p99(s.key), 2),
      vsA ? ratio(rps(s.key), refRps(s.key)).text : '–',
      vsA ? ratio(p99(s.key), refP99(s.key)).text : '–',
      String(ss.reduce((a, x) => a + x.errors, 0)),
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
  console.log('');
  console.log(
    `| | CPU µs per request, median | server | upstream | redis-server | autocannon | all | ${cores} cores ÷ all = ceiling req/s | server GCs per 1k req: scavenges, other (mark-compact, incremental marking, weak callbacks) | server GC ms per 1k req | server peak RSS, MB |`,
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const s of servers) {
    const ss = of(s.key);
    const m = (f: (x: Sample) => number) => median(ss.map(f));
    const all = m((x) => x.cpu.server + x.cpu.upstream + x.cpu.redis + x.cpu.bench);
    const cells = [
      s.key,
      s.label,
      fmt(m((x) => x.cpu.server)),
      fmt(m((x) => x.cpu.upstream)),
      s.redis ? fmt(m((x) => x.cpu.redis)) : '–',
      fmt(m((x) => x.cpu.bench)),
      fmt(all),
      fmt((cores * 1e6) / all),
      `${fmt(
        m((x) => x.gc.minor),
        2,
      )}, ${fmt(
        m((x) => x.gc.major),
        2,
      )}`,
      fmt(
        m((x) => x.gc.ms),
        1,
      ),
      fmt(Math.max(...ss.map((x) => x.peakRssMb))),
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
  console.log('');
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  if (has('D') && has('A')) {
    const r = ratio(rps('D'), refRps('D'));
    console.log(`target: D req/s >= 0.8x A: ${r.text} — ${verdict(r.m >= 0.8)}`);
    const q = ratio(p99('D'), refP99('D'));
    console.log(`target: D p99 <= 1.3x A: ${q.text} — ${verdict(q.m <= 1.3)}`);
  }
  if (has('D') && has('E')) {
    const r = ratio(norm('D'), norm('E'));
    console.log(
      `target: D req/s >= 2x E (express-session + connect-redis): ${r.text} — ${verdict(r.m >= 2)}`,
    );
  }
  const base: Key | undefined = has('D') ? 'D' : has('B') ? 'B' : undefined;
  if (has('F') && base) {
    const r = ratio(norm('F'), norm(base));
    const cost = (1 - r.m) * 100;
    console.log(
      `target: rules cost <= 10% of throughput (F vs ${base}): F/${base} = ${r.text}, cost ${cost.toFixed(0)}% — ${verdict(cost <= 10)}`,
    );
  }
  if (has('G') && has('B')) {
    const r = ratio(norm('G'), norm('B'));
    console.log(`rules on the memory store (G vs B): G/B = ${r.text}, cost ${((1 - r.m) * 100).toFixed(0)}%`);
  }
  if (has('H') && has('A')) {
    const r = ratio(rps('H'), refRps('H'));
    const q = ratio(p99('H'), refP99('H'));
    console.log(`without the near cache (H vs A): req/s ${r.text}, p99 ${q.text}`);
  }
  if (has('J') && has('B')) {
    const r = ratio(norm('J'), norm('B'));
    console.log(`OpenID Connect sessions against plain ones (J vs B, memory store): J/B = ${r.text}`);
  }
  if (has('I') && has('A')) {
    const r = ratio(rps('I'), refRps('I'));
    const q = ratio(p99('I'), refP99('I'));
    console.log(
      `control, the same bare proxy again (I vs A; 1.00× is a fair method): req/s ${r.text}, p99 ${q.text}`,
    );
  }
  // Where the time goes: extra CPU per request over the bare proxy (F over D, G over B), per process.
  const cpuMedian = (k: Key, f: (x: Sample) => number) => median(of(k).map(f));
  for (const [k, than] of [
    ['B', 'A'],
    ['C', 'A'],
    ['D', 'A'],
    ['E', 'A'],
    ['F', base],
    ['G', 'B'],
    ['H', 'A'],
    ['J', 'B'],
  ] as [Key, Key | undefined][]) {
    if (!has(k) || !than || !has(than)) continue;
    const d = (f: (x: Sample) => number) => fmt(Math.round(cpuMedian(k, f) - cpuMedian(than, f)) || 0);
    console.log(
      `CPU: ${k} − ${than} = ${d((x) => x.cpu.server)} µs/req in the server process, ${d((x) => x.cpu.redis)} in redis-server, ${d((x) => x.cpu.upstream)} in the upstream, ${d((x) => x.cpu.bench)} in autocannon`,
    );
  }
}

// ---- main --------------------------------------------------------------------------------

async function main(): Promise<void> {
  const wanted = new Set((process.env.BENCH_VARIANTS ?? 'A,B,C,D,E,F,G,H,I,J').split(',') as Key[]);
  const noRedis = redisSkip();
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  let redis: RedisServer | undefined;
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), 'sg-bench-gw-'));
    dirs.push(d);
    return d;
  };
  try {
    if (noRedis) {
      console.log(`NOTE: ${noRedis}; D and E are skipped and F runs on the memory store`);
      wanted.delete('D');
      wanted.delete('E');
      wanted.delete('H');
    } else if (wanted.has('D') || wanted.has('E') || wanted.has('F') || wanted.has('H')) {
      redis = await startRedis();
    }
    const up = await startChild('upstream', {});
    children.push(up.child);
    const upstream = `http://127.0.0.1:${up.port}`;
    const servers: Server[] = [];
    const add = async (key: Key, label: string, role: string, args: object, extra: Partial<Server> = {}) => {
      if (!wanted.has(key)) return;
      const c = await startChild(role, args);
      children.push(c.child);
      servers.push({ key, label, ...c, addsUser: false, checksSession: true, ...extra });
    };
    const gw = (store: string, rules: string[] = []): SessiongateArgs => ({
      store,
      upstream,
      rules,
      dir: tmp(),
    });
    const fake = Array.from({ length: POOL }, () => `MRHSession=${newToken().token}`);
    await add('A', 'bare proxy (node:http + Upstream)', 'bare', { upstream }, { checksSession: false });
    if (servers[0]) servers[0].cookies = fake;
    await add('B', 'sessiongate, memory', 'sessiongate', gw('memory'));
    const c = gw('');
    await add('C', 'sessiongate, sqlite', 'sessiongate', {
      ...c,
      store: `sqlite:${join(c.dir, 'sessions.db')}`,
    });
    if (redis) {
      await add('D', 'sessiongate, redis', 'sessiongate', gw(`${redis.url}?prefix=bench-d`), { redis });
      const ex: ExpressArgs = { redis: redis.url, upstream };
      await add('E', 'express-session + connect-redis', 'express', ex, { redis, addsUser: true });
    }
    await add(
      'F',
      `sessiongate, ${redis ? 'redis' : 'memory'} + 4 example rules`,
      'sessiongate',
      gw(redis ? `${redis.url}?prefix=bench-f` : 'memory', exampleRules),
      { addsUser: true, ...(redis ? { redis } : {}) },
    );
    await add('G', 'sessiongate, memory + 4 example rules', 'sessiongate', gw('memory', exampleRules), {
      addsUser: true,
    });
    if (redis) {
      await add(
        'H',
        'sessiongate, redis, nearCache=0',
        'sessiongate',
        gw(`${redis.url}?prefix=bench-h&nearCache=0`),
        {
          redis,
        },
      );
    }

    await add('J', 'sessiongate, memory, OIDC sessions', 'sessiongate', { ...gw('memory'), oidc: true });
    await add('I', 'bare proxy again (control)', 'bare', { upstream }, { checksSession: false });
    const control = servers.find((s) => s.key === 'I');
    if (control) control.cookies = fake;

    console.log(
      `bench:gateway — autocannon, ${CONNECTIONS} connections, ${POOL} sessions round-robin, GET of a ${BODY.length}-byte answer, ` +
        `${DURATION} s per run, ${ROUNDS} round(s) interleaved; node ${process.version} (servers: ${NODE_FLAGS.join(' ') || 'V8 defaults'}), ${cpus().length} cores, ` +
        `load average ${loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
    );
    for (const n of await check(servers)) console.log(`check: ${n}`);
    for (const s of servers) await load(s, up.child, WARMUP);
    const samples = new Map<Key, Sample[]>(servers.map((s) => [s.key, []]));
    const refs = new Map<Key, Reference[]>(servers.map((s) => [s.key, []]));
    const show = (round: number, s: Server, x: Sample) =>
      console.log(
        `  round ${round} ${s.key} ${s.label.padEnd(40)} ${fmt(x.rps).padStart(7)} req/s  p50 ${fmt(x.p50, 2).padStart(5)} ms  p99 ${fmt(x.p99, 2).padStart(6)} ms (autocannon ${x.p99Whole})  ` +
          `CPU µs/req ${fmt(x.cpu.server)} + ${fmt(x.cpu.upstream)} + ${fmt(x.cpu.redis)} + ${fmt(x.cpu.bench)}  ` +
          `GC/1k req ${fmt(x.gc.minor, 2)} + ${fmt(x.gc.major, 2)}, ${fmt(x.gc.ms, 1)} ms` +
          (x.errors ? `  ERRORS ${x.errors}` : ''),
      );
    const run = async (round: number, s: Server) => {
      // A server that sat idle while the others ran has let V8 shrink its heap (the memory
      // reducer): one unmeasured second brings it back to its steady state before measuring.
      // Without it, the bare proxy (every other run) stayed warm and the rest did not.
      if (RESUME > 0) await load(s, up.child, RESUME);
      const x = await load(s, up.child, DURATION);
      samples.get(s.key)?.push(x);
      show(round, s, x);
      return x;
    };
    // With A: A B A C A D ... A, so every variant has an A run just before and just after it,
    // and its reference is their mean. The host's speed drifts over minutes (other work on
    // the same cores); a fixed order A B C ... H put H seven runs away from its A.
    const bare = servers.find((s) => s.key === 'A');
    const others = servers.filter((s) => s !== bare);
    let before = bare ? await run(1, bare) : undefined;
    for (let round = 1; round <= ROUNDS; round++) {
      for (const s of others) {
        await run(round, s);
        if (!bare || !before) continue;
        const after = await run(round, bare);
        refs.get(s.key)?.push({ rps: (before.rps + after.rps) / 2, p99: (before.p99 + after.p99) / 2 });
        before = after;
      }
      if (others.length === 0 && bare) await run(round, bare);
    }
    report(servers, samples, refs);
    console.log(
      `load average at the end: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    await Promise.all(children.map(stopChild));
    await redis?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

await main();
