/**
 * The SSH gateway against one real OpenSSH sshd (npm run bench:ssh), in one run:
 *   1. scp (the real client) of a random 100 MB file, direct to sshd and through a
 *      `sessiongate serve` process (login root@127.0.0.1+PORT, policy [ allow ], the key from
 *      test/ssh/fixtures/key-store.ts), alternating, median of 3 each; the copy checked once by
 *      size and SHA-256; the serve process's CPU time (/proc/PID/stat) per MB it carried;
 *   2. connection setup with the ssh2 Client, 50 sequential connections each way (alternating):
 *      connect() until an exec of `true` has exited (through the gateway: its target logon too);
 *   3. the serve process's VmRSS per idle session: 200 shells open through it (batches of 10).
 * sshd (test/support/sshd.ts) and serve are children stopped by pid, the temporary folder
 * removed, on failure too. BENCH_QUICK=1: 20 MB, 1 copy, 10 connections, 40 shells.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  openSync,
  writeSync,
  closeSync,
} from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { freePort } from '../test/e2e/gateways.js';
import { track, untrack } from '../test/support/processes.js';
import { runScp } from '../test/support/ssh-client.js';
import { sshdSkip, startSshd, type SshdTarget } from '../test/support/sshd.js';
import { Latencies, fmt, median, summary } from './stats.js';

const { Client } = ssh2;
type SshClient = InstanceType<typeof Client>;

const QUICK = process.env.BENCH_QUICK === '1';
const FILE_MB = QUICK ? 20 : 100;
const COPIES = QUICK ? 1 : 3;
const CONNECTIONS = QUICK ? 10 : 50;
const SHELLS = QUICK ? 40 : 200;
const BATCH = 10;
const BIN = fileURLToPath(new URL('../bin/sessiongate.js', import.meta.url));
const KEY_STORE = fileURLToPath(new URL('../test/ssh/fixtures/key-store.ts', import.meta.url));
const T0 = performance.now();
const elapsed = () => `${((performance.now() - T0) / 1000).toFixed(0)} s, load ${loadavg()[0]!.toFixed(1)}`;
const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

interface Serve {
  proc: ChildProcess;
  pid: number;
  port: number;
}

/** Start `sessiongate serve` (memory store) with the SSH route to sshd; resolves once it listens. */
async function startServe(dir: string, sshd: SshdTarget): Promise<Serve> {
  writeFileSync(join(dir, 'known_hosts'), sshd.knownHostsLine + '\n');
  const file = join(dir, 'bench.yaml');
  writeFileSync(
    file,
    `store: memory
keys: ./keyring.json
listen: { port: ${await freePort()} }
admin: { enabled: false }
plugins:
  - { name: keys, runtime: module, path: ${KEY_STORE}, config: { key_file: ${sshd.userPrivateKeyFile}, log_file: ./hooks.log } }
profiles:
  ssh: { policy: [ allow ] }
routes:
  - { upstream: "http://127.0.0.1:9" }
ssh:
  listen: { port: 0 }
  host_keys: [ ./ssh_host_key ]
  known_hosts: ./known_hosts
  routes:
    - { hosts: [ 127.0.0.1 ], ports: [ ${sshd.port} ], profile: ssh, credentials: { plugin: keys }, allow: [ { target_users: [ ${sshd.user} ] } ] }
`,
  );
  const proc = spawn(process.execPath, [BIN, 'serve', '--config', file], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  track(proc);
  proc.once('exit', () => untrack(proc));
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not listen in 30 s: ${out}`)), 30_000);
    const look = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"ssh listening"'));
      if (!line) return;
      clearTimeout(timer);
      const { pid, port } = JSON.parse(line) as { pid: number; port: number };
      resolve({ proc, pid, port });
    };
    proc.stdout!.on('data', look);
    proc.stderr!.on('data', look);
    proc.once('exit', (code) => reject(new Error(`serve exited (${code}): ${out}`)));
  });
}

/** SIGTERM (SIGKILL after 3 s) to serve, then SIGKILL to the relaunched child serving SSH. */
async function stopServe(gw: Serve): Promise<void> {
  const { proc } = gw;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
  // `serve` relaunches itself with V8 flags: the pid that logged "ssh listening" is its child,
  // which a SIGKILLed parent would leave behind.
  if (gw.pid !== proc.pid) {
    try {
      process.kill(gw.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** utime + stime of a process, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function writeRandomFile(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  for (let left = bytes; left > 0; left -= 1 << 20) writeSync(fd, randomBytes(Math.min(left, 1 << 20)));
  closeSync(fd);
}

/** One scp of `src` to `dst`; seconds taken (wall, whole client run including its logon). */
async function copy(src: string, dst: string, login: string, port: number, key?: string): Promise<number> {
  const t = performance.now();
  const r = await runScp([src, `${login}@127.0.0.1:${dst}`], {
    port,
    ...(key ? { identityFile: key } : {}),
    timeoutMs: 300_000,
  });
  const s = (performance.now() - t) / 1000;
  if (r.code !== 0) throw new Error(`scp to ${login} failed (${r.code}): ${r.stderr}`);
  return s;
}

interface Target {
  port: number;
  username: string;
  privateKey?: string;
}

/** An ssh2 client logged on (keyboard-interactive answered with nothing: policy [ allow ]). */
function connect(t: Target): Promise<SshClient> {
  const client = new Client();
  client.on('keyboard-interactive', (_n, _i, _l, prompts, finish) => finish(prompts.map(() => '')));
  return new Promise((resolve, reject) => {
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port: t.port,
      username: t.username,
      ...(t.privateKey ? { privateKey: t.privateKey } : { tryKeyboard: true }),
      readyTimeout: 30_000,
    });
  });
}

function closeClient(client: SshClient): Promise<void> {
  return new Promise((resolve) => {
    client.once('close', () => resolve());
    client.end();
  });
}

/** ms from connect() until an exec of `true` has exited. */
async function setupMs(t: Target): Promise<number> {
  const start = performance.now();
  const client = await connect(t);
  await new Promise<void>((resolve, reject) =>
    client.exec('true', (err, ch) => {
      if (err) return reject(err);
      let code: number | undefined;
      ch.on('exit', (c: number) => (code = c));
      ch.on('close', () => (code === 0 ? resolve() : reject(new Error(`true exited ${code}`))));
      ch.resume();
    }),
  );
  const ms = performance.now() - start;
  await closeClient(client);
  return ms;
}

/** A client with a pty shell open that has answered an echo. */
async function idleShell(t: Target, i: number): Promise<SshClient> {
  const client = await connect(t);
  await new Promise<void>((resolve, reject) =>
    client.shell({ term: 'xterm', rows: 24, cols: 80 }, (err, ch) => {
      if (err) return reject(err);
      let text = '';
      const want = `m${i + 7}`; // the typed command shows m$((i+7)), the answer m<number>
      ch.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.includes(want)) resolve();
      });
      ch.write(`echo m$((${i}+7))\n`);
    }),
  );
  return client;
}

async function benchCopies(dir: string, sshd: SshdTarget, gw: Serve) {
  const src = join(dir, 'random.bin');
  const bytes = FILE_MB * 1_000_000;
  writeRandomFile(src, bytes);
  const hash = sha256(src);
  const via = `${sshd.user}@127.0.0.1+${sshd.port}`;
  const res = { direct: [] as number[], gateway: [] as number[], cpuMsPerMB: [] as number[], checked: '' };
  for (let i = 0; i < COPIES; i++) {
    const d = join(dir, `direct-${i}.bin`);
    res.direct.push(FILE_MB / (await copy(src, d, sshd.user, sshd.port, sshd.userPrivateKeyFile)));
    const g = join(dir, `gateway-${i}.bin`);
    const cpu0 = cpuMs(gw.pid);
    res.gateway.push(FILE_MB / (await copy(src, g, via, gw.port)));
    res.cpuMsPerMB.push((cpuMs(gw.pid) - cpu0) / FILE_MB);
    if (i === 0) {
      const ok = [d, g].every((f) => statSync(f).size === bytes && sha256(f) === hash);
      if (!ok) throw new Error('a copied file differs from the original');
      res.checked = `both copies ${fmt(bytes)} bytes, sha256 ${hash.slice(0, 12)}… equal`;
    }
    rmSync(d);
    rmSync(g);
    console.log(
      `  copy ${i + 1}: direct ${fmt(res.direct[i]!, 1)} MB/s, gateway ${fmt(res.gateway[i]!, 1)} MB/s, serve CPU ${fmt(res.cpuMsPerMB[i]!, 2)} ms/MB, ${elapsed()}`,
    );
  }
  rmSync(src);
  return res;
}

async function benchSetup(direct: Target, gateway: Target) {
  await setupMs(direct); // warm-up, not counted
  await setupMs(gateway);
  const d = new Latencies();
  const g = new Latencies();
  for (let i = 0; i < CONNECTIONS; i++) {
    d.add(await setupMs(direct));
    g.add(await setupMs(gateway));
    if ((i + 1) % 10 === 0) console.log(`  connections: ${i + 1} each way, ${elapsed()}`);
  }
  const pick = (l: Latencies) => ({ p50: l.percentile(50), p99: l.percentile(99) });
  const res = { direct: pick(d), gateway: pick(g) };
  // Printed at once, so a run stopped later still leaves this phase's figures.
  console.log(
    `  setup ms p50/p99: direct ${fmt(res.direct.p50, 1)}/${fmt(res.direct.p99, 1)}, gateway ${fmt(res.gateway.p50, 1)}/${fmt(res.gateway.p99, 1)}`,
  );
  return res;
}

async function benchMemory(gw: Serve, gateway: Target) {
  await closeClient(await idleShell(gateway, 0)); // warm-up
  await new Promise((r) => setTimeout(r, 1000)); // let the warm-up session's close settle
  const before = rssKiB(gw.pid);
  const clients: SshClient[] = [];
  try {
    for (let i = 0; i < SHELLS; i += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, SHELLS - i) }, (_, j) => idleShell(gateway, i + j));
      clients.push(...(await Promise.all(batch)));
      if (clients.length % 50 === 0) console.log(`  shells open: ${clients.length}, ${elapsed()}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const open = rssKiB(gw.pid);
    return { before, open, perSession: (open - before) / SHELLS };
  } finally {
    await Promise.all(clients.map(closeClient));
  }
}

async function main(): Promise<void> {
  if (sshdSkip()) return;
  const dir = mkdtempSync(join(tmpdir(), 'sg-bench-ssh-'));
  let sshd: SshdTarget | undefined;
  let gw: Serve | undefined;
  const cleanup = async () => {
    if (gw) await stopServe(gw);
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    sshd = await startSshd();
    gw = await startServe(dir, sshd);
    console.log(
      `bench:ssh — ${FILE_MB} MB scp ×${COPIES}, ${CONNECTIONS} connections, ${SHELLS} shells; node ${process.version}, load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    const direct: Target = { port: sshd.port, username: sshd.user, privateKey: sshd.userPrivateKey };
    const gateway: Target = { port: gw.port, username: `${sshd.user}@127.0.0.1+${sshd.port}` };
    const copies = await benchCopies(dir, sshd, gw);
    const setup = await benchSetup(direct, gateway);
    // A fresh process for the memory phase: the copies leave a large heap that the GC gives
    // back at its own pace, which would hide (or invert) what the idle sessions cost.
    await stopServe(gw);
    gw = await startServe(dir, sshd);
    const mem = await benchMemory(gw, { ...gateway, port: gw.port });
    report(copies, setup, mem);
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function report(
  c: Awaited<ReturnType<typeof benchCopies>>,
  s: Awaited<ReturnType<typeof benchSetup>>,
  m: Awaited<ReturnType<typeof benchMemory>>,
): void {
  const ratio = median(c.gateway) / median(c.direct);
  console.log(`\n  ${c.checked}\n`);
  console.log('| what | direct to sshd | through the gateway | gateway / direct |');
  console.log('| --- | ---: | ---: | ---: |');
  console.log(
    `| scp ${FILE_MB} MB, MB/s, median (min–max, spread) of ${COPIES} | ${summary(c.direct, 1)} | ${summary(c.gateway, 1)} | ${ratio.toFixed(2)}× ${ratio >= 0.7 ? '✓' : '✗'} (target ≥ 0.7×) |`,
  );
  console.log(
    `| connection setup to \`true\` exited, p50 ms (${CONNECTIONS}) | ${fmt(s.direct.p50, 1)} | ${fmt(s.gateway.p50, 1)} | ${(s.gateway.p50 / s.direct.p50).toFixed(2)}× |`,
  );
  console.log(
    `| same, p99 ms | ${fmt(s.direct.p99, 1)} | ${fmt(s.gateway.p99, 1)} | ${(s.gateway.p99 / s.direct.p99).toFixed(2)}× |`,
  );
  console.log(`| serve CPU per MB copied, ms (median) | – | ${fmt(median(c.cpuMsPerMB), 2)} | |`);
  console.log(
    `| serve VmRSS: before / with ${SHELLS} idle shells, KiB | – | ${fmt(m.before)} / ${fmt(m.open)} | |`,
  );
  console.log(`| serve VmRSS per idle session, KiB | – | ${fmt(m.perSession, 1)} | |`);
}

await main();
