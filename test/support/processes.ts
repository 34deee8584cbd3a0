// What the servers tests start (redis-server, slapd) share: the loud skip line when a server is
// missing, and killing every started process by pid, even when the test process itself dies.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

const warned = new Set<string>();

/**
 * `reason` when `present` is false (printed once as a loud line, except under CI=true, where the
 * caller turns it into a failure); false when the server is there.
 */
export function skipReason(what: string, present: boolean, reason: string): string | false {
  if (present) return false;
  if (!warned.has(what) && process.env.CI !== 'true') {
    warned.add(what);
    console.error(`\n!!! ${what} TESTS SKIPPED: ${reason} !!!\n`);
  }
  return reason;
}

/** Under CI=true a missing server fails the run instead of skipping. */
export const serverRequired = (): boolean => process.env.CI === 'true';

const live = new Set<ChildProcess>();
let watchdog: { pidFile: string; child: ChildProcess } | undefined;

/**
 * Kill `child` when this process exits, and — through a detached shell that outlives it — when
 * this process is killed without running its exit handlers (SIGKILL). Untrack it once stopped.
 */
export function track(child: ChildProcess): void {
  live.add(child);
  if (!watchdog) {
    const pidFile = join(mkdtempSync(join(tmpdir(), 'sg-test-pids-')), 'pids');
    writeFileSync(pidFile, '');
    const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; xargs -r kill -9 < '${pidFile}' 2>/dev/null`;
    const guard = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
    guard.unref();
    watchdog = { pidFile, child: guard };
  }
  appendFileSync(watchdog.pidFile, `${child.pid}\n`);
}

export function untrack(child: ChildProcess): void {
  live.delete(child);
}

process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  watchdog?.child.kill('SIGKILL');
});

/** A loopback port that can be bound right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether a server accepts connections on this loopback port now. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
