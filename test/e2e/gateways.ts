// Real `sessiongate serve` processes for the end-to-end tests: a config written per gateway, the
// process started without the V8 relaunch (so the pid we SIGKILL is the gateway's own), its
// JSON log lines and stderr kept, and every process killed by pid when the test ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from '../cli/helpers.js';
import { track, untrack } from '../support/processes.js';

export const RECORDER = fileURLToPath(new URL('./fixtures/recorder.mjs', import.meta.url));
export const PASSWORD = 'e2e-pass';

/** One JSON log line of a gateway process (pino). */
export interface LogLine {
  level: number;
  pid: number;
  msg?: string;
  [field: string]: unknown;
}

export interface GatewayProcess {
  /** The serve process (the cluster primary with --workers). */
  proc: ChildProcess;
  base: string;
  adminBase: string | undefined;
  stderr: () => string;
  /** Every complete JSON line on stdout so far. */
  logs: () => LogLine[];
  /** Pids that logged `listening` (one, or each worker as it starts). */
  listeningPids: () => number[];
  exited: Promise<number | null>;
}

export interface PluginSpec {
  name: string;
  /** The host's deadline of one hook call. */
  timeoutMs: number;
}

export interface GatewayConfig {
  dir: string;
  file: string;
  port: number;
  adminPort?: number;
  store: string;
  plugins: PluginSpec[];
  /** More top-level YAML (e.g. settings the close pipeline takes). */
  extra?: string;
}

/** A free TCP port on loopback (closed again at once: the gateway binds it next). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Files every gateway of one test shares: calls of the recorder, its control file, the audit trail. */
export const shared = (dir: string) => ({
  calls: join(dir, 'calls.jsonl'),
  control: join(dir, 'control.json'),
  audit: join(dir, 'audit.log'),
  token: join(dir, 'admin.token'),
});

/**
 * Write a gateway config: the recorder plugins in the policy of two profiles — `default` on
 * /app (long idle timeout) and `idle` on /idle (5 s idle timeout, ended by the sweeper; long enough for a logon on a loaded machine).
 */
export function writeConfig(c: GatewayConfig): string {
  const files = shared(c.dir);
  const plugins = c.plugins
    .map(
      (p) =>
        `  - { name: ${p.name}, runtime: module, path: "${RECORDER}", timeout_ms: ${p.timeoutMs}, ` +
        `config: { file: "${files.calls}", control: "${files.control}", password: ${PASSWORD} } }`,
    )
    .join('\n');
  const steps = c.plugins.map((p) => `{ authenticate: ${p.name} }`).join(', ');
  const profile = `failure_delay_ms: { min: 0, max: 0 }
    max_in_progress_per_client_ip: 0
    policy_timeout: 60
    policy: [logon, ${steps}, allow]`;
  const admin =
    c.adminPort === undefined
      ? '{ enabled: false }'
      : `{ enabled: true, host: 127.0.0.1, port: ${c.adminPort}, token_file: "${files.token}" }`;
  const text = `listen: { host: 127.0.0.1, port: ${c.port} }
store: "${c.store}"
keys: ./keyring.json
log: { level: info }
admin: ${admin}
audit: { file: "${files.audit}" }
plugins:
${plugins}
profiles:
  default:
    ${profile}
  idle:
    cookie: { name: IdleSession }
    inactivity_timeout: 5
    ${profile}
routes:
  - { match: { path: /app }, upstream: demo }
  - { match: { path: /idle }, upstream: demo, profile: idle }
${c.extra ?? ''}`;
  const path = join(c.dir, c.file);
  writeFileSync(path, text);
  return path;
}

const started = new Set<ChildProcess>();

/** SIGKILL every gateway process still running (an `after` hook of each test file). */
export function killAll(): void {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}

/** Start `sessiongate serve` on a written config; resolves once `workers` processes listen. */
export async function serve(c: GatewayConfig, workers = 1, ms = 45_000): Promise<GatewayProcess> {
  const args = ['serve', '--config', c.file, '--semi-space-mb', '0', '--memory-reducer'];
  if (workers > 1) args.push('--workers', String(workers));
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd: c.dir,
    env: { ...process.env, SESSIONGATE_DEBUG: '', NODE_OPTIONS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(proc);
  track(proc);
  let out = '';
  let err = '';
  let parsed: LogLine[] = [];
  let parsedUpTo = 0;
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) =>
    proc.once('exit', (code) => {
      untrack(proc);
      r(code);
    }),
  );
  const logs = (): LogLine[] => {
    const end = out.lastIndexOf('\n') + 1;
    if (end > parsedUpTo) {
      const fresh = out
        .slice(parsedUpTo, end)
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as LogLine);
      parsed = parsed.concat(fresh);
      parsedUpTo = end;
    }
    return parsed;
  };
  const listeningPids = () =>
    logs()
      .filter((l) => l.msg === 'listening')
      .map((l) => l.pid);
  const g: GatewayProcess = {
    proc,
    base: `http://127.0.0.1:${c.port}`,
    adminBase: c.adminPort === undefined ? undefined : `http://127.0.0.1:${c.adminPort}`,
    stderr: () => err,
    logs,
    listeningPids,
    exited,
  };
  await until(`${c.file}: ${workers} process(es) listening`, () => listeningPids().length >= workers, ms, g);
  return g;
}

/** Poll `probe` every 25 ms until true; fail naming `what` after `ms` or when `g` exits. */
export async function until(
  what: string,
  probe: () => boolean,
  ms: number,
  g?: GatewayProcess,
): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (probe()) return;
    if (g && g.proc.exitCode !== null) throw new Error(`${what}: the gateway exited\n${g.stderr()}`);
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** SIGKILL a process by pid (a gateway, or one worker of a cluster). */
export function sigkill(pid: number): void {
  process.kill(pid, 'SIGKILL');
}
