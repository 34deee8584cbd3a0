/**
 * The real OpenSSH client binaries (`ssh`, `scp`, `sftp`) run by the SSH gateway tests, with
 * child_process and no shell. Every run ignores the user's and the system's ssh_config
 * (`-F /dev/null`), trusts any host key without remembering it, and never reads a terminal: the
 * child runs in its own session (no controlling tty) with stdin a pipe, and passwords or
 * keyboard-interactive answers come from an SSH_ASKPASS script written for that run.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { track, untrack } from './processes.js';

export interface SshRunOptions {
  /** Added as `-p PORT` (ssh) or `-P PORT` (scp, sftp) before the given arguments. */
  port?: number;
  /** Answer every password or keyboard-interactive prompt with this. */
  password?: string;
  /**
   * Answer the prompts in this order (e.g. a password, then a TOTP code); once they are used up
   * the askpass script fails, which ssh takes as a cancelled prompt.
   */
  answers?: string[];
  /** Public key logon with this private key file only (else public keys are not tried). */
  identityFile?: string;
  /** Written to the child's stdin, which is then closed (closed at once without it). */
  input?: string | Buffer;
  /** Kill the child after this long (default 10 s); the promise then rejects. */
  timeoutMs?: number;
  /** Added to the environment. */
  env?: NodeJS.ProcessEnv;
}

export interface SshRunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
  /** The prompts the askpass script answered (or refused), in order. */
  prompts: string[];
}

const COMMON = [
  '-F',
  '/dev/null',
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'ConnectTimeout=5',
];

/**
 * Run `ssh` with the common options, then `args` (destination and command).
 * @example
 * const r = await runSsh(['-p', String(port), 'root@127.0.0.1', 'echo hi'], { identityFile });
 * assert.equal(r.stdout.toString(), 'hi\n');
 */
export const runSsh = (args: string[], o: SshRunOptions = {}): Promise<SshRunResult> =>
  run('ssh', '-p', args, o);

/**
 * Run `scp` (`-P PORT` when `port` is given) with the common options, then `args`.
 * @example
 * await runScp(['-P', String(port), local, `root@127.0.0.1:${remote}`], { identityFile });
 */
export const runScp = (args: string[], o: SshRunOptions = {}): Promise<SshRunResult> =>
  run('scp', '-P', args, o);

/**
 * Run `sftp` with the common options, then `args`. Note that `sftp -b` turns on BatchMode, so
 * with a password give the commands as `input` instead of `-b -`.
 * @example
 * await runSftp(['-b', '-', `root@127.0.0.1`], { port, identityFile, input: 'put a /tmp/b\n' });
 */
export const runSftp = (args: string[], o: SshRunOptions = {}): Promise<SshRunResult> =>
  run('sftp', '-P', args, o);

/** A folder with an askpass script answering `answers` in order (or `password` forever). */
function askpass(o: SshRunOptions): { dir: string; script: string } | undefined {
  const answers = o.answers ?? (o.password === undefined ? undefined : [o.password]);
  if (!answers) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'sg-askpass-'));
  answers.forEach((a, i) => writeFileSync(join(dir, `answer-${i}`), a));
  writeFileSync(join(dir, 'count'), '0');
  writeFileSync(join(dir, 'prompts'), '');
  // With one password every prompt gets it; with a list, the n-th prompt gets the n-th answer.
  const forever = o.answers === undefined;
  const script = join(dir, 'askpass');
  writeFileSync(
    script,
    `#!/bin/sh
d='${dir}'
printf '%s\\0' "$1" >> "$d/prompts"
n=$(cat "$d/count")
${forever ? '' : 'echo $((n + 1)) > "$d/count"\n'}[ -f "$d/answer-$n" ] || exit 1
cat "$d/answer-$n"
echo
`,
  );
  chmodSync(script, 0o700);
  return { dir, script };
}

function run(cmd: string, portFlag: string, args: string[], o: SshRunOptions): Promise<SshRunResult> {
  const ask = askpass(o);
  const auth = o.identityFile
    ? ['-o', 'IdentitiesOnly=yes', '-i', o.identityFile]
    : ['-o', 'PubkeyAuthentication=no'];
  const argv = [...COMMON, ...auth, ...(o.port === undefined ? [] : [portFlag, String(o.port)]), ...args];
  const env: NodeJS.ProcessEnv = { ...process.env, ...o.env };
  if (ask) Object.assign(env, { SSH_ASKPASS: ask.script, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: ':0' });
  else env.SSH_ASKPASS_REQUIRE = 'never';
  const timeoutMs = o.timeoutMs ?? 10_000;
  // detached: a new session, so ssh has no terminal to prompt on and the group can be killed.
  const child = spawn(cmd, argv, { env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  track(child);
  const stdout: Buffer[] = [];
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => stdout.push(d));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.on('error', () => undefined); // the child may exit before reading it all
  child.stdin!.end(o.input);
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      untrack(child);
      if (ask) rmSync(ask.dir, { recursive: true, force: true });
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      untrack(child);
      const prompts = ask ? readFileSync(join(ask.dir, 'prompts'), 'utf8').split('\0').slice(0, -1) : [];
      if (ask) rmSync(ask.dir, { recursive: true, force: true });
      if (timedOut) {
        reject(new Error(`${cmd} ${args.join(' ')}: killed after ${timeoutMs} ms; stderr: ${stderr.trim()}`));
      } else resolve({ code, stdout: Buffer.concat(stdout), stderr, prompts });
    });
  });
}
