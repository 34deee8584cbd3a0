import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Io } from '../../src/cli/context.js';
import { main } from '../../src/cli/main.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = join(ROOT, 'bin/sessiongate.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'sg-cli-'));
}

/** Every failure is one line on stderr, and never a stack trace. */
export function assertCleanStderr(r: Run): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(
    lines.every((l) => !/^\s+at /.test(l)),
    `stack trace in stderr:\n${r.stderr}`,
  );
  if (r.code !== 0) {
    assert.equal(lines.length, 1, `expected one line on stderr, got:\n${r.stderr}`);
    assert.match(lines[0]!, /^sessiongate: /);
  }
}

/** Run the real CLI in a child process (tsx included), in `cwd`. */
export function spawnCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, SESSIONGATE_DEBUG: '', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        const run = { code, stdout, stderr };
        assertCleanStderr(run);
        done(run);
      },
    );
  });
}

/** Run `main` in this process with captured output (fast; for flags and errors). */
export async function runCli(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (t) => void (stdout += t),
    err: (t) => void (stderr += t),
    env,
    cwd,
  };
  const code = await main(args, io);
  const run = { code, stdout, stderr };
  if (env.SESSIONGATE_DEBUG === undefined) assertCleanStderr(run);
  return run;
}
