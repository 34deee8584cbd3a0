import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SessionId, SessionToken } from '../../src/core/ids.js';
import { SessionEngine } from '../../src/session/engine.js';
import { Keyring } from '../../src/session/keyring.js';
import type { SessionStore } from '../../src/store/contract.js';
import { openStore } from '../../src/store/open.js';
import {
  redisRequired,
  redisSkip,
  startCluster,
  startRedis,
  type RedisCluster,
  type RedisServer,
} from '../support/redis-servers.js';
import { spawnCli, tempDir, type Run } from './helpers.js';

// Every `sessiongate session` command as its own process (bin/sessiongate.js) on a real Redis:
// a standalone server and a 3-master + 3-replica cluster. A gateway's engine in this process
// shares the store, so what a command did is checked where the gateway would see it.

const SECRET = 'r3dis-s3cure-value-q7';

/** Each command's wall time, by store kind (the report's figures). */
const timings: Record<string, number[]> = {};

/** The test's own engine on the store, with the key ring the commands are given. */
interface Side {
  url: string;
  dir: string;
  store: SessionStore;
  engine: SessionEngine;
  keyFile: string;
}

async function openSide(url: string): Promise<Side> {
  const dir = tempDir();
  const keyFile = join(dir, 'keyring.json');
  const store = await openStore(url);
  const engine = new SessionEngine({ store, keyring: Keyring.loadOrCreate(keyFile) });
  return { url, dir, store, engine, keyFile };
}

async function closeSide(side: Side | undefined): Promise<void> {
  if (!side) return;
  await side.engine.stop();
  await side.store.dispose();
}

/**
 * Run `sessiongate session ARGS --store URL --key-file K` and time it. A command that left a
 * redis connection open would never exit: spawnCli's 30 s bound kills it and the exit code
 * is not 0.
 */
async function session(side: Side, kind: string, ...args: string[]): Promise<Run> {
  const started = Date.now();
  const r = await spawnCli(['session', ...args, '--store', side.url, '--key-file', side.keyFile], side.dir);
  (timings[kind] ??= []).push(Date.now() - started);
  return r;
}

function everyCommand(kind: string, getSide: () => Side): void {
  let alice: { id: SessionId; token: SessionToken };
  let pending: { id: SessionId; token: SessionToken };

  before(async () => {
    const { engine, store } = getSide();
    alice = await engine.create({ user: 'alice', clientIp: '10.9.8.7', state: 'allow' });
    pending = await engine.create({ clientIp: '10.9.8.6' });
    await engine.data.set(alice.id, 'session.logon.last.password', SECRET, { secure: true });
    // The close pipeline's subscriber: it receives the close records of what the CLI ends.
    await store.ensureSubscriber('audit');
  });

  it('list --json and the table show the sessions the engine made', async () => {
    const side = getSide();
    const [listed, table] = await Promise.all([
      session(side, kind, 'list', '--json'),
      session(side, kind, 'list'),
    ]);
    assert.equal(listed.code, 0, listed.stderr);
    const ids = (JSON.parse(listed.stdout) as { id: string; user: string | null }[]).map((s) => s.id).sort();
    assert.deepEqual(ids, [alice.id, pending.id].sort());
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`^${alice.id}\\s+allow\\s+alice\\s+10\\.9\\.8\\.7`, 'm'));
  });

  it('show: the fields, secure values masked', async () => {
    const r = await session(getSide(), kind, 'show', alice.id, '--json');
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout) as { user: string; variables: Record<string, string> };
    assert.equal(shown.user, 'alice');
    assert.equal(shown.variables['session.logon.last.password'], '********');
    assert.ok(!r.stdout.includes(SECRET));
  });

  it('data set, then data get (plain and --secure) see the same store as the engine', async () => {
    const side = getSide();
    const set = await session(side, kind, 'data', 'set', alice.id, 'session.custom.team', 'blue');
    assert.deepEqual(set, { code: 0, stdout: '', stderr: '' });
    assert.equal(await side.engine.data.get(alice.id, 'session.custom.team'), 'blue');
    const [team, secret] = await Promise.all([
      session(side, kind, 'data', 'get', alice.id, 'session.custom.team'),
      session(side, kind, 'data', 'get', alice.id, '--secure', 'session.logon.last.password'),
    ]);
    assert.equal(team.stdout, 'blue\n');
    assert.equal(secret.stdout, `${SECRET}\n`);
  });

  it('kill: the gateway refuses the token at once and the close record reaches the outbox', async () => {
    const side = getSide();
    // A validation first, so this process's near cache holds the session when the kill comes.
    assert.equal((await side.engine.validate(alice.token)).valid, true);
    const r = await session(side, kind, 'kill', alice.id);
    assert.deepEqual(r, { code: 0, stdout: '', stderr: '' });
    const after = await side.engine.validate(alice.token);
    assert.deepEqual(after.valid, false);
    assert.equal(await side.store.get(alice.id), null);
    const claimed = await side.store.claim('audit', 'test', { now: Date.now(), leaseMs: 5000, limit: 10 });
    const record = claimed.find((c) => c.sessionId === alice.id);
    assert.ok(record, `no close record for ${alice.id} in the outbox`);
    assert.equal(record.reason, 'admin_kill');
    assert.equal(record.snapshot.user, 'alice');
    await side.store.ack('audit', record.seq);
  });

  it('create, exists, modify, remove, kill --user from the command line', async () => {
    const side = getSide();
    const created = await session(side, kind, 'create', '--user', 'bob', '--json');
    assert.equal(created.code, 0, created.stderr);
    const bob = JSON.parse(created.stdout) as { id: SessionId; token: SessionToken };
    assert.equal((await side.engine.get(bob.id))?.user, 'bob');
    const exists = await session(side, kind, 'exists', bob.id, '--state', 'allow');
    assert.equal(exists.stdout, 'true\n');
    const modified = await session(side, kind, 'modify', bob.id, '--timeout', '120', '--json');
    assert.equal(modified.code, 0, modified.stderr);
    assert.equal((await side.engine.get(bob.id))?.idleTimeout, 120);
    const removed = await session(side, kind, 'remove', bob.id);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(await side.engine.get(bob.id), null);
    // A failing command closes its connections too: it ends with its one error line.
    const again = await session(side, kind, 'remove', bob.id);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, `sessiongate: SG_ERR_SESSION_NOT_FOUND: no live session with id ${bob.id}\n`);
    await side.engine.create({ user: 'carol', state: 'allow' });
    await side.engine.create({ user: 'carol', state: 'allow' });
    const killed = await session(side, kind, 'kill', '--user', 'carol');
    assert.deepEqual(killed, { code: 0, stdout: '2\n', stderr: '' });
    assert.deepEqual(await side.engine.listByUser('carol'), []);
  });

  it('a config file whose store is the redis URL is read like --store', async () => {
    const side = getSide();
    const config = join(side.dir, 'gw.yaml');
    writeFileSync(config, `store: ${JSON.stringify(side.url)}\nkeys: ./keyring.json\n`);
    const r = await spawnCli(['session', 'show', pending.id, '--json', '--config', config], side.dir);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { id: string }).id, pending.id);
  });
}

describe('cli: a redis that cannot be reached', () => {
  it('is one line naming the server, never the password; exit 1, and the process ends', async () => {
    const port = await closedPort();
    const url = `redis://:hunter2@127.0.0.1:${port}`;
    const r = await spawnCli(['session', 'list', '--store', url], tempDir());
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(`^sessiongate: SG_ERR_STORE_UNAVAILABLE: redis at 127\\.0\\.0\\.1:${port}: `),
    );
    assert.ok(!r.stderr.includes('hunter2'));
  });
});

/** A loopback port nothing listens on (bound, then closed). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const skip = redisSkip();
if (skip && redisRequired()) {
  it('redis-server is installed (required under CI=true)', () => assert.fail(skip));
} else {
  // The two run side by side (the cluster starts, about 4 s, while the standalone is in use);
  // the tests of each run in order (concurrency is inherited, hence the 1 below).
  describe('cli: every session command on redis', { skip: skip || undefined, concurrency: 2 }, () => {
    after(() => {
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      for (const [kind, ms] of Object.entries(timings)) {
        console.error(
          `# cli on ${kind}: ${ms.length} commands, median ${median(ms)} ms, max ${Math.max(...ms)} ms`,
        );
      }
    });

    describe('a standalone server', { concurrency: 1 }, () => {
      let server: RedisServer | undefined;
      let side: Side | undefined;
      before(async () => {
        server = await startRedis();
        side = await openSide(server.url);
      });
      after(async () => {
        await closeSide(side);
        await server?.stop();
      });
      everyCommand('redis', () => side!);
    });

    describe('a 3+3 cluster', { concurrency: 1 }, () => {
      let cluster: RedisCluster | undefined;
      let side: Side | undefined;
      before(async () => {
        cluster = await startCluster();
        side = await openSide(cluster.url);
      });
      after(async () => {
        await closeSide(side);
        await cluster?.stop();
      });
      everyCommand('cluster', () => side!);
    });
  });
}
