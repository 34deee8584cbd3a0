import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashPassword } from '../../../src/plugins/builtin/password.js';
import { track, untrack } from '../../support/processes.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const BIN = join(ROOT, 'bin/sessiongate.js');

/** `sessiongate serve` in a child process, as an operator runs it, watched by the campaign. */
export interface ChildGateway {
  url: string;
  port: number;
  pid: number;
  /** The process is still running. */
  alive(): boolean;
  /** Its resident set size now, in bytes (Linux /proc). */
  rss(): number;
  /** Its log lines at level error or above (pino JSON on stdout), and any stderr besides the banner. */
  errorLines(): string[];
  stop(): Promise<void>;
}

/**
 * Write `config` (with ${DIR} and ${ROOT} replaced) and a users file (alice / wonderland, bob /
 * builder in group ops) to a new folder and start `sessiongate serve` on it; resolves once it
 * listens. The child's old-space heap is capped so a leak ends in a crash the campaign sees.
 *
 * @example
 * const gw = await startChildGateway('listen: { host: 127.0.0.1, port: 0 }\n...');
 * await fetch(gw.url + '/app');
 * await gw.stop();
 */
export async function startChildGateway(config: string, heapMb = 256): Promise<ChildGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-fuzz-gw-'));
  const fast = { N: 1024, r: 8, p: 1 };
  writeFileSync(
    join(dir, 'users.yaml'),
    `users:\n  alice:\n    password: ${await hashPassword('wonderland', fast)}\n` +
      `  bob:\n    password: ${await hashPassword('builder', fast)}\n    groups: [ops]\n`,
  );
  writeFileSync(join(dir, 'sessiongate.yaml'), config.replaceAll('${DIR}', dir).replaceAll('${ROOT}', ROOT));
  const child: ChildProcess = spawn(process.execPath, [BIN, 'serve', '--config', 'sessiongate.yaml'], {
    cwd: dir,
    env: { ...process.env, SESSIONGATE_DEBUG: '', NODE_OPTIONS: `--max-old-space-size=${heapMb}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  const errors: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (/"level":(50|60)/.test(line)) errors.push(line);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((ok, fail) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) ok(m[1]!);
    });
    void exited.then(() => fail(new Error(`sessiongate serve exited before listening:\n${stderr}`)));
  });
  const pid = child.pid!;
  return {
    url,
    port: Number(new URL(url).port),
    pid,
    alive: () => child.exitCode === null && child.signalCode === null,
    rss: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return Number(m?.[1] ?? 0) * 1024;
    },
    errorLines: () => [
      ...errors,
      ...stderr.split('\n').filter((l) => l !== '' && !l.startsWith('sessiongate: listening on')),
    ],
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      untrack(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
