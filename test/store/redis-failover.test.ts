import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isSessionGateError } from '../../src/core/errors.js';
import type { SessionId } from '../../src/core/ids.js';
import { sampleSession } from '../../src/store/conformance.js';
import { RedisStore } from '../../src/store/redis/store.js';
import { keySlot } from '../../src/store/redis/keys.js';
import {
  clusterNodes,
  redisRequired,
  redisSkip,
  startCluster,
  waitFor,
  type RedisCluster,
} from '../support/redis-servers.js';

/** Requests in flight at once, as a busy gateway process would have. */
const WORKERS = 16;
/** Acknowledged creates to see before the kill. */
const BEFORE_KILL = 1500;

const skip = redisSkip();

if (skip && redisRequired()) {
  it('redis-server is installed (required under CI=true)', () => assert.fail(skip));
} else {
  describe('redis store: failover of a cluster master under load', { skip: skip || undefined }, () => {
    let cluster: RedisCluster | undefined;
    before(async () => {
      cluster = await startCluster();
    });
    after(async () => {
      await cluster?.stop();
    });

    it(
      'keeps every session acknowledged with durability=replicated; the same client recovers',
      { timeout: 55_000 },
      async () => {
        const store = await RedisStore.open(`${cluster!.url}?prefix=fo${process.pid}&durability=replicated`);
        const acked: SessionId[] = [];
        let ackedAtKill: number;
        let ok = 0;
        let failed = 0;
        let firstFailure = 0;
        let lastFailure = 0;
        let okSinceFailure = 0;
        let slowest = 0;
        const codes = new Map<string, number>();
        let stop = false;

        const worker = async () => {
          while (!stop) {
            const now = Date.now();
            try {
              // A request bound for the dead master waits while the client follows the failover.
              const s = sampleSession({ createdAt: now, lastAccessAt: now, idleTimeout: 3600 });
              await store.create(s, {}, now);
              acked.push(s.id);
              const probe = acked[Math.floor(Math.random() * acked.length)]!;
              const out = await store.validate(probe, now, 1000);
              assert.equal(out.status, 'valid', `acknowledged session ${probe} is ${out.status}`);
              ok += 2;
              okSinceFailure += 2;
              slowest = Math.max(slowest, Date.now() - now);
            } catch (err) {
              if (err instanceof assert.AssertionError) throw err;
              assert.ok(isSessionGateError(err), String(err));
              codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
              failed++;
              okSinceFailure = 0;
              lastFailure = Date.now();
              if (!firstFailure) firstFailure = lastFailure;
              await new Promise((r) => setTimeout(r, 20)); // a client backing off a little
            }
          }
        };
        const load = Promise.all(Array.from({ length: WORKERS }, worker));
        try {
          await waitFor('load before the kill', async () => acked.length >= BEFORE_KILL, 20_000);

          // Kill the master serving the first shard's slot.
          const slot = keySlot(store.keys.base(0));
          const seed = cluster!.nodes[0]!.port;
          const before = await clusterNodes(seed);
          const owner = before.find((n) => n.flags.includes('master') && servesSlot(n.slots, slot))!;
          const victim = cluster!.nodes.find((n) => n.port === owner.port)!;
          const survivor = cluster!.nodes.find((n) => n.port !== victim.port)!;
          ackedAtKill = acked.length;
          const killedAt = Date.now();
          victim.kill('SIGKILL');
          await victim.exited;

          // Its replica takes over: the surviving nodes agree a live master serves the slot.
          await waitFor(
            'a replica to take over the slot',
            async () => {
              const view = await clusterNodes(survivor.port);
              const m = view.find((n) => n.flags.includes('master') && servesSlot(n.slots, slot));
              return m !== undefined && m.port !== victim.port && !m.flags.includes('fail');
            },
            20_000,
          );
          const tookOverMs = Date.now() - killedAt;

          // Writes there need a replica again (durability=replicated): the old master restarts
          // and rejoins as the new master's replica, as a supervisor would bring it back.
          await victim.restart();
          const okAtRejoin = ok;
          const ackedAtRejoin = acked.length;
          await waitFor(
            'the old master to rejoin as a replica and the load to run clean',
            async () => ok - okAtRejoin >= 2000 && okSinceFailure >= 500,
            25_000,
          );
          stop = true;
          await load;

          const lost: SessionId[] = [];
          for (const id of acked) if (!(await store.get(id))) lost.push(id);
          const windowMs = failed ? lastFailure - firstFailure : 0;
          console.log(
            `failover: replica took over ${tookOverMs} ms after SIGKILL; ${failed} of ${ok + failed} requests failed ` +
              `during ${windowMs} ms (${[...codes].map(([c, n]) => `${c} x${n}`).join(', ') || 'none'}); ` +
              `the slowest successful create+validate took ${slowest} ms; ` +
              `${acked.length} sessions acknowledged (${ackedAtKill} before the kill), ${lost.length} lost`,
          );
          assert.deepEqual(lost, [], 'every acknowledged session is still there');
          assert.ok(
            acked.length > ackedAtRejoin,
            'the same client kept creating sessions after the failover',
          );
        } finally {
          stop = true;
          await load.catch(() => undefined);
          await store.dispose();
        }
      },
    );
  });
}

function servesSlot(ranges: string[], slot: number): boolean {
  return ranges.some((r) => {
    if (r.startsWith('[')) return false; // a slot being migrated
    const [lo, hi] = r.split('-').map(Number);
    return slot >= lo! && slot <= (hi ?? lo)!;
  });
}
