/**
 * Real Redis servers for the tests: a standalone `redis-server`, and a 3-master + 3-replica
 * cluster made with `redis-cli --cluster create`, each on free loopback ports with its own
 * temporary directory and no persistence. Everything started here is stopped by pid (SIGTERM,
 * then SIGKILL) by `stop()`, on process exit, and, should this process be killed outright, by a
 * small watchdog shell that outlives it just long enough to kill the servers.
 *
 * Without `redis-server` on PATH the tests are skipped with one loud line, except under
 * `CI=true`, where a missing server is a failure (see `redisSkip`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serverRequired, skipReason, track, untrack } from './processes.js';

export const HOST = '127.0.0.1';

export interface RedisServer {
  port: number;
  readonly pid: number;
  /** `redis://127.0.0.1:PORT` */
  url: string;
  /** Stop it (SIGTERM, then SIGKILL after a grace period) and remove its directory. */
  stop(): Promise<void>;
  /** Send a signal now, without waiting (failover tests kill a master with SIGKILL). */
  kill(signal: NodeJS.Signals): void;
  /** Settles when the (current) process has exited. */
  readonly exited: Promise<void>;
  /** Start it again after it died, on the same port and directory (a cluster node rejoins). */
  restart(): Promise<void>;
}

export interface RedisCluster {
  nodes: RedisServer[];
  /** `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...` (every node, so any one can seed). */
  url: string;
  stop(): Promise<void>;
}

const onPath = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/**
 * Why the redis tests cannot run here, or `false` when they can. Prints the loud line once.
 * Under CI=true a missing server is not a skip: the caller turns the reason into a failure.
 */
export function redisSkip(): string | false {
  return skipReason(
    'REDIS',
    onPath('redis-server') && onPath('redis-cli'),
    'redis-server is not on PATH: `apt-get install redis-server` enables the redis tests',
  );
}

/** True when a missing server must fail the run instead of skipping (CI). */
export const redisRequired = serverRequired;

/** A port where both it and its cluster bus port (+10000) can be bound right now. */
async function freePort(): Promise<number> {
  const canBind = (port: number) =>
    new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, HOST, () => srv.close(() => resolve(true)));
    });
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await canBind(port)) && (await canBind(port + 10_000))) return port;
  }
  throw new Error('no free port pair found for redis-server');
}

/** One command over a raw socket (RESP), answer as text; for health checks without a client. */
export function rawCommand(port: number, args: string[], timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, HOST);
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`redis on ${port}: no answer to ${args[0]} in ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('data', (chunk: string) => {
      out += chunk;
      const done = /^[+\-:]/.test(out)
        ? out.includes('\r\n')
        : out.startsWith('$') && out.length >= bulkLength(out);
      if (done) {
        clearTimeout(timer);
        sock.end();
        resolve(out.startsWith('$') ? out.slice(out.indexOf('\r\n') + 2, bulkLength(out) - 2) : out.trim());
      }
    });
    sock.write(
      args
        .map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`)
        .join('')
        .replace(/^/, `*${args.length}\r\n`),
    );
  });
}

function bulkLength(reply: string): number {
  const nl = reply.indexOf('\r\n');
  if (nl < 0) return Infinity;
  const n = Number(reply.slice(1, nl));
  return n < 0 ? 0 : nl + 2 + n + 2; // byte count equals char count for the ASCII replies used here
}

/** Poll `check` until it returns true or `timeoutMs` passes (then throw with `what`). */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// --- servers ------------------------------------------------------------------------------

/** Start one `redis-server` on a free port; resolves once it answers PING. */
export async function startRedis(
  extraArgs: string[] | ((port: number) => string[]) = [],
): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), `sg-redis-${port}-`));
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--logfile', 'redis.log',
    // Replicas sync without waiting 5 s for more replicas to join (the default delay).
    '--repl-diskless-sync', 'yes',
    '--repl-diskless-sync-delay', '0',
    ...(typeof extraArgs === 'function' ? extraArgs(port) : extraArgs),
  ]; // prettier-ignore
  let child: ChildProcess;
  let exited: Promise<void>;
  let gone = false;
  const launch = () => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    if (child.pid === undefined) throw new Error('redis-server did not start');
    const proc = child;
    track(proc);
    gone = false;
    exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    void exited.then(() => {
      untrack(proc);
      gone = true;
    });
  };
  launch();
  const server: RedisServer = {
    port,
    get pid() {
      return child.pid!;
    },
    url: `redis://${HOST}:${port}`,
    kill: (signal) => void child.kill(signal),
    get exited() {
      return exited;
    },
    restart: async () => {
      if (!gone) throw new Error(`redis-server on ${port} is still running`);
      launch();
      await waitFor(
        `redis-server on port ${port} again`,
        async () => (await rawCommand(port, ['PING'])) === '+PONG',
      );
    },
    stop: async () => {
      if (!gone) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(`redis-server on port ${port}`, async () => (await rawCommand(port, ['PING'])) === '+PONG');
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/**
 * A 3-master + 3-replica cluster on loopback, ready when every node reports `cluster_state:ok`
 * and every replica's link to its master is up (so WAIT and failover work from the start).
 */
export async function startCluster(): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (let i = 0; i < 6; i++) {
      nodes.push(
        await startRedis((port) => [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', `nodes-${port}.conf`,
          '--cluster-node-timeout', '2000',
          // A replica may always take over, however long its master was unreachable.
          '--cluster-replica-validity-factor', '0',
        ]), // prettier-ignore
      );
    }
    const create = spawnSync(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...nodes.map((n) => `${HOST}:${n.port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (create.status !== 0)
      throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await waitFor(
      'the cluster to be ok on every node with every replica in sync',
      async () => {
        let replicas = 0;
        for (const n of nodes) {
          if (!(await rawCommand(n.port, ['CLUSTER', 'INFO'])).includes('cluster_state:ok')) return false;
          // Every node must see the same shape: 3 masters with slots, 3 replicas, nobody failing.
          const seen = await clusterNodes(n.port);
          const ok = (f: string[]) => !f.some((x) => x === 'fail' || x === 'fail?' || x === 'handshake');
          if (seen.length !== 6 || !seen.every((s) => ok(s.flags))) return false;
          if (seen.filter((s) => s.flags.includes('slave')).length !== 3) return false;
          if (seen.filter((s) => s.flags.includes('master') && s.slots.length > 0).length !== 3) return false;
          const repl = await rawCommand(n.port, ['INFO', 'replication']);
          if (repl.includes('role:slave')) {
            if (!repl.includes('master_link_status:up')) return false;
            replicas++;
          }
        }
        return replicas === 3;
      },
      30_000,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, url: `redis+cluster://${nodes.map((n) => `${HOST}:${n.port}`).join(',')}`, stop };
}

/** `CLUSTER NODES` of one node, parsed: id, address, flags, master id and slot ranges. */
export async function clusterNodes(
  port: number,
): Promise<{ id: string; port: number; flags: string[]; master: string; slots: string[] }[]> {
  const text = await rawCommand(port, ['CLUSTER', 'NODES']);
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((line) => {
      const f = line.trim().split(' ');
      return {
        id: f[0]!,
        port: Number(/:(\d+)@/.exec(f[1]!)?.[1]),
        flags: f[2]!.split(','),
        master: f[3]!,
        slots: f.slice(8),
      };
    });
}
