import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { sampleSession } from '../../src/store/conformance.js';
import { RedisStore } from '../../src/store/redis/store.js';
import {
  redisRequired,
  redisSkip,
  startCluster,
  waitFor,
  type RedisCluster,
} from '../support/redis-servers.js';

const T0 = Date.UTC(2026, 0, 1);
const EXPIRING = 10_000;
const NAMES = ['audit', 'vault'];

/** A child engine process (fixtures/redis-engine.ts) spoken to in JSON lines. */
class Peer {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  private readonly waiting = new Map<number, (reply: Record<string, unknown>) => void>();
  private n = 0;
  readonly ready: Promise<unknown>;
  stderr = '';

  constructor(url: string) {
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // a plain program, not a test file of this run
    const file = fileURLToPath(new URL('./fixtures/redis-engine.ts', import.meta.url));
    this.child = spawn(process.execPath, ['--import', 'tsx', file, url, String(T0)], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.ready = new Promise((resolve) => this.waiting.set(0, resolve));
    let buffer = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('{')) {
          const reply = JSON.parse(line) as Record<string, unknown> & { n: number };
          this.waiting.get(reply.n)?.(reply);
          this.waiting.delete(reply.n);
        } else this.lines.push(line);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (c: string) => (this.stderr += c));
  }

  /** Send a command; resolves with its answer (fails the test on an error answer). */
  async call(op: string, args: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    const n = ++this.n;
    const reply = new Promise<Record<string, unknown>>((resolve) => this.waiting.set(n, resolve));
    this.child.stdin!.write(`${JSON.stringify({ n, op, ...args })}\n`);
    const out = await reply;
    if (out.error) throw new Error(`peer ${this.child.pid} ${op}: ${String(out.error)}`);
    return out;
  }

  /** Send without waiting for the answer (a dispatch that blocks in its handler never answers). */
  send(op: string, args: Record<string, unknown> = {}): void {
    this.child.stdin!.write(`${JSON.stringify({ n: ++this.n, op, ...args })}\n`);
  }

  async end(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

const skip = redisSkip();

if (skip && redisRequired()) {
  it('redis-server is installed (required under CI=true)', () => assert.fail(skip));
} else {
  describe('redis store: four engine processes on one cluster', { skip: skip || undefined }, () => {
    let cluster: RedisCluster | undefined;
    let peers: Peer[] = [];
    let url = '';
    /** Closes made before the expiry test: a new subscriber gets them too (still in the outbox). */
    const earlier: string[] = [];
    before(async () => {
      cluster = await startCluster();
      url = `${cluster.url}?prefix=mp${process.pid}`;
      peers = Array.from({ length: 4 }, () => new Peer(url));
      await Promise.all(peers.map((p) => p.ready));
    });
    after(async () => {
      await Promise.all(peers.map((p) => p.end()));
      await cluster?.stop();
    });

    it('a session created in one validates in all; a remove in one is seen by all at once', async () => {
      const { id, token } = (await peers[0]!.call('create', { now: T0 })) as { id: string; token: string };
      for (const p of peers) assert.equal((await p.call('validate', { token, now: T0 + 10 })).valid, true);
      assert.deepEqual((await peers[1]!.call('remove', { id })).removed, true);
      earlier.push(id);
      for (const p of peers) assert.equal((await p.call('validate', { token, now: T0 + 20 })).valid, false);
    });

    it(
      `${EXPIRING} sessions expire while all four sweep: each subscriber gets each close exactly once`,
      { timeout: 90_000 },
      async () => {
        const store = await RedisStore.open(url);
        const created = new Set<string>();
        try {
          for (let i = 0; i < EXPIRING; i += 500) {
            const batch = Array.from({ length: Math.min(500, EXPIRING - i) }, () =>
              sampleSession({ idleTimeout: 10, variables: {} }),
            );
            await Promise.all(batch.map((s) => store.create(s, {}, T0)));
            for (const s of batch) created.add(s.id);
          }
        } finally {
          await store.dispose();
        }
        for (const p of peers) await p.call('subscribe', { names: NAMES });
        const sweepAt = T0 + 60_000;
        const t = Date.now();
        await Promise.all(peers.map((p) => p.call('run', { now: sweepAt })));
        const delivered = () =>
          NAMES.map((name) => peers.flatMap((p) => p.lines.filter((l) => l.startsWith(`closed ${name} `))));
        await waitFor(
          `${EXPIRING} closes for each subscriber`,
          async () => delivered().every((d) => d.length >= EXPIRING + earlier.length),
          80_000,
        );
        await Promise.all(peers.map((p) => p.call('stop')));
        const byName = delivered();
        for (let i = 0; i < NAMES.length; i++) {
          const all = byName[i]!.map((l) => l.split(' ')[2]!);
          assert.deepEqual(
            all.filter((id) => !created.has(id)),
            earlier,
          );
          const ids = all.filter((id) => created.has(id));
          assert.equal(ids.length, EXPIRING, `${NAMES[i]}: ${ids.length} deliveries (duplicates?)`);
          assert.deepEqual(new Set(ids), created, `${NAMES[i]}: missing or foreign records`);
          assert.ok(
            byName[i]!.every((l) => l.endsWith(' false')),
            'nothing was redelivered',
          );
        }
        const share = peers.map((p) => p.lines.filter((l) => l.startsWith('closed ')).length);
        console.log(
          `${EXPIRING} expiries x ${NAMES.length} subscribers delivered in ${Date.now() - t} ms; per process ${share.join('/')}`,
        );
        for (const p of peers) p.lines.length = 0;
      },
    );

    it(
      'a process killed with SIGKILL while holding claimed records: the others take them over, flagged redelivered',
      { timeout: 60_000 },
      async () => {
        const [victim, ...rest] = peers as [Peer, ...Peer[]];
        const now = T0 + 3_600_000;
        const ids: string[] = [];
        for (let i = 0; i < 30; i++) ids.push(String((await victim.call('create', { now })).id));
        for (const [k, id] of ids.entries()) await rest[k % rest.length]!.call('remove', { id, now });
        // Only the victim subscribes first, so it leases every record; its handler never returns.
        await victim.call('subscribe', { names: ['slow'], block: true, timeoutMs: 600_000 });
        victim.send('dispatch', { now });
        await waitFor(
          'the victim to hold a record',
          async () => victim.lines.some((l) => l.startsWith('holding slow ')),
          20_000,
        );
        victim.child.kill('SIGKILL');
        await new Promise((r) => victim.child.once('exit', r));
        for (const p of rest) await p.call('subscribe', { names: ['slow'] });
        // The victim claimed a first batch of 10 (claims are sized to the lease): the others
        // deliver the rest at once, and what it held once its 5 s lease has gone unrenewed.
        let early = 0;
        for (const p of rest) early += Number((await p.call('dispatch', { now: now + 1_000 })).handled);
        assert.equal(early, ids.length - 10, 'only what the victim never claimed, before its lease ends');
        const later = now + 5_000;
        await Promise.all(rest.map((p) => p.call('run', { now: later })));
        const got = () => rest.flatMap((p) => p.lines.filter((l) => l.startsWith('closed slow ')));
        await waitFor(
          'the survivors to deliver every held record',
          async () => got().length >= ids.length,
          30_000,
        );
        await Promise.all(rest.map((p) => p.call('stop')));
        const lines = got();
        assert.equal(lines.length, ids.length, 'each record exactly once');
        assert.deepEqual(new Set(lines.map((l) => l.split(' ')[2])), new Set(ids));
        const held = victim.lines.find((l) => l.startsWith('holding slow '))!.split(' ')[2];
        assert.ok(
          lines.some((l) => l === `closed slow ${held} true`),
          'the record whose handler was cut off is flagged redelivered',
        );
        assert.equal(lines.filter((l) => l.endsWith(' true')).length, 10, 'exactly the 10 it held');
      },
    );
  });
}
