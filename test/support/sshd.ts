/**
 * A real OpenSSH server for the SSH gateway tests: `/usr/sbin/sshd` (Debian package
 * `openssh-server`) in the foreground (`-D -e`) on a free loopback port, with its own temporary
 * folder holding a fresh ed25519 host key, a generated `sshd_config` and a test user key pair
 * whose public half is the only authorized key. It logs in the user running the tests (root in
 * CI) and is stopped by pid (SIGTERM, then SIGKILL), on process exit too, and by the watchdog
 * of processes.ts should this process be killed outright. The package's own service is not used.
 *
 * Without sshd the tests are skipped with one loud line, except under CI=true (a failure).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { canConnect, freePort, serverRequired, skipReason, track, untrack } from './processes.js';

export const SSHD = '/usr/sbin/sshd';

export interface SshdTarget {
  host: '127.0.0.1';
  port: number;
  pid: number;
  /** The account sshd logs in: the user running the tests. */
  user: string;
  /** The temporary folder (keys, config, pid file); removed by `stop()`. */
  dir: string;
  /** `ssh-ed25519 AAAA...` (no comment). */
  hostKeyLine: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 AAAA...`, a known_hosts line. */
  knownHostsLine: string;
  /** `SHA256:...`, as `ssh-keygen -lf` prints it. */
  hostKeySha256: string;
  /** The test user's private key (OpenSSH format, no passphrase). */
  userPrivateKey: string;
  userPrivateKeyFile: string;
  /** `ssh-ed25519 AAAA... sessiongate-test`, the one line of AuthorizedKeysFile. */
  userPublicKeyLine: string;
  /** What sshd has written to stderr so far (LogLevel VERBOSE; the last 64 KB). */
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** PasswordAuthentication yes (and PermitRootLogin yes); the accounts' own passwords apply. */
  password?: boolean;
  /** More sshd_config lines, appended (e.g. `MaxAuthTries 2`). */
  extraConfig?: string[];
}

/** Why the sshd tests cannot run here, or false. Prints the loud line once (not under CI). */
export function sshdSkip(): string | false {
  return skipReason(
    'SSH',
    existsSync(SSHD) && onPath('ssh') && onPath('ssh-keygen'),
    `${SSHD} or ssh is missing: \`apt-get install openssh-server openssh-client\` enables the ssh tests`,
  );
}

/** Under CI=true a missing sshd fails the run instead of skipping. */
export const sshdRequired = serverRequired;

const onPath = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** The pids below a process (Linux): sshd's per-connection processes and what they run. */
function descendantsOf(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // gone, or no /proc
  }
  return children.flatMap((c) => [c, ...descendantsOf(c)]);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function keygen(args: string[]): string {
  const r = spawnSync('ssh-keygen', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ssh-keygen ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** `type base64` of a public key file, without its comment. */
const keyLine = (pubFile: string): string =>
  readFileSync(pubFile, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');

function config(dir: string, port: number, options: SshdOptions): string {
  const password = options.password ?? false;
  return [
    'ListenAddress 127.0.0.1',
    `Port ${port}`,
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PermitRootLogin ${password ? 'yes' : 'prohibit-password'}`,
    `PasswordAuthentication ${password ? 'yes' : 'no'}`,
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The temporary folder is not owned and locked down the way StrictModes wants.
    'StrictModes no',
    'UseDNS no',
    'PrintMotd no',
    'PrintLastLog no',
    'Subsystem sftp internal-sftp',
    'AcceptEnv LANG LC_* SG_TEST_*',
    'LogLevel VERBOSE',
    ...(options.extraConfig ?? []),
    '',
  ].join('\n');
}

/** The keys and files of a new sshd folder; everything but the port-dependent config. */
function prepare(dir: string) {
  // sshd refuses to start without its privilege separation directory (made by the service).
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = join(dir, 'host_ed25519');
  keygen(['-q', '-t', 'ed25519', '-N', '', '-C', 'sessiongate-test-host', '-f', hostKey]);
  const userKey = join(dir, 'user_ed25519');
  keygen(['-q', '-t', 'ed25519', '-N', '', '-C', 'sessiongate-test', '-f', userKey]);
  const userPublicKeyLine = readFileSync(`${userKey}.pub`, 'utf8').trim();
  writeFileSync(join(dir, 'authorized_keys'), `${userPublicKeyLine}\n`);
  const fingerprint = keygen(['-l', '-E', 'sha256', '-f', `${hostKey}.pub`]).split(/\s+/)[1];
  if (!fingerprint?.startsWith('SHA256:')) throw new Error(`no fingerprint for ${hostKey}`);
  return {
    hostKeyLine: keyLine(`${hostKey}.pub`),
    hostKeySha256: fingerprint,
    userPrivateKeyFile: userKey,
    userPrivateKey: readFileSync(userKey, 'utf8'),
    userPublicKeyLine,
  };
}

/**
 * Start sshd on a free loopback port; retried on another port when the chosen one was taken
 * between picking and binding.
 * @example
 * const sshd = await startSshd();
 * t.after(() => sshd.stop());
 * await runSsh(['-p', String(sshd.port), `${sshd.user}@127.0.0.1`, 'true'],
 *   { port: sshd.port, identityFile: sshd.userPrivateKeyFile });
 */
export async function startSshd(options: SshdOptions = {}): Promise<SshdTarget> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-sshd-'));
  try {
    const keys = prepare(dir);
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      writeFileSync(join(dir, 'sshd_config'), config(dir, port, options));
      const started = await launch(dir, port);
      if ('pid' in started) {
        return {
          host: '127.0.0.1',
          port,
          user: userInfo().username,
          dir,
          knownHostsLine: `[127.0.0.1]:${port} ${keys.hostKeyLine}`,
          ...keys,
          ...started,
        };
      }
      const taken = /address already in use|cannot bind/i.test(started.error);
      if (!taken || attempt >= 5) throw new Error(`sshd did not start on port ${port}: ${started.error}`);
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

type Launched = { pid: number; log(): string; stop(): Promise<void> } | { error: string };

/** Run sshd and wait (bounded) until its port accepts a connection, or it died. */
async function launch(dir: string, port: number): Promise<Launched> {
  let output = '';
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-65_536)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  track(child);
  let dead = false;
  void exited.then(() => (dead = true));

  const kill = async () => {
    if (!dead) {
      // sshd leaves its connections and their commands running when it ends: end them too.
      for (const pid of descendantsOf(child.pid!)) signal(pid, 'SIGTERM');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    untrack(child);
  };
  const until = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (dead || Date.now() > until) {
      await kill();
      return { error: (dead ? '' : 'timed out. ') + output.trim().slice(-1000) };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const stop = async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  };
  return { pid: child.pid!, log: () => output, stop };
}
