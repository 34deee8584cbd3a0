// Two `sessiongate serve` processes on one Redis, a plugin whose session_ended is slow: every
// session the plugin took part in gets session_ended exactly once — with no crash (the batch
// a dispatcher claimed must not be taken over while it still works on it), and when the
// gateway delivering is SIGKILLed and restarted (only the delivery the kill cut off may come
// again, flagged redelivered, and the other gateway takes over within seconds).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { redisRequired, redisSkip, startRedis, type RedisServer } from '../support/redis-servers.js';
import { freePort, killAll, serve, shared, sigkill, writeConfig, type GatewayProcess } from './gateways.js';
import { judge, judgeAudit, readCalls, readCloses, summary, takeoverMs } from './oracle.js';
import {
  allAudited,
  allEnded,
  deliveringPid,
  drained,
  endAll,
  knob,
  median,
  populate,
  scenarioDir,
  setBehaviour,
} from './scenario.js';

const skip = redisSkip();
// Defaults keep the run short; E2E_SESSIONS=151 E2E_ENDED_DELAY_MS=800 is the outside check's size.
const count = knob('E2E_SESSIONS', 45);
const delay = knob('E2E_ENDED_DELAY_MS', 300);

/** Two gateways (A with the admin listener) on one store, sharing every file of `dir`. */
async function twoGateways(
  dir: string,
  store: string,
): Promise<{ gws: GatewayProcess[]; configs: Parameters<typeof serve>[0][] }> {
  const configs = [
    {
      dir,
      file: 'gw-a.yaml',
      port: await freePort(),
      adminPort: await freePort(),
      store,
      plugins: [{ name: 'rec', timeoutMs: 5000 }],
    },
    { dir, file: 'gw-b.yaml', port: await freePort(), store, plugins: [{ name: 'rec', timeoutMs: 5000 }] },
  ];
  for (const c of configs) writeConfig(c);
  const gws = [await serve(configs[0]!), await serve(configs[1]!)]; // A first: it creates the token file
  return { gws, configs };
}

if (skip && redisRequired()) {
  it('redis-server is installed (required under CI=true)', () => assert.fail(skip));
} else {
  describe('exactly once: two gateways on one Redis', { skip: skip || undefined }, () => {
    let redis: RedisServer | undefined;
    after(async () => {
      killAll();
      await redis?.stop();
    });

    it(
      'a slow session_ended is delivered once per session, with no crash',
      { timeout: 90_000 + count * delay },
      async () => {
        redis ??= await startRedis();
        const dir = scenarioDir('slow');
        setBehaviour(dir, { session_ended: { delay_ms: delay } });
        const { gws } = await twoGateways(dir, `${redis.url}?prefix=slow${process.pid}`);
        const pop = await populate(gws, count);
        await endAll(dir, pop, gws, gws[0]!);
        const users = pop.sessions.map((_, i) => `u${i}`);
        const took = await allEnded(dir, 'rec', users, count * delay + 20_000);
        await drained(gws[0]!, dir, 20_000);
        const logs = gws.flatMap((g) => g.logs());
        const v = judge({ calls: readCalls(shared(dir).calls), plugin: 'rec', logs });
        console.log(
          `# slow session_ended: ${count} sessions x ${delay} ms, all ended after ${took} ms; ${summary(v)}`,
        );
        assert.equal(v.participated, count, summary(v));
        assert.deepEqual(v.problems, [], summary(v));
        const ids = [...pop.sessions.map((s) => s.id), ...pop.unfinished];
        await allAudited(dir, ids, 10_000);
        assert.deepEqual(judgeAudit(readCloses(shared(dir).audit), ids, false), []);
      },
    );

    it(
      'SIGKILL of the gateway delivering, then restarted: once per session, takeover within seconds',
      { timeout: 120_000 },
      async () => {
        redis ??= await startRedis();
        const count = 36;
        const delay = 200;
        const dir = scenarioDir('kill');
        setBehaviour(dir, { session_ended: { delay_ms: delay } });
        const { gws, configs } = await twoGateways(dir, `${redis.url}?prefix=kill${process.pid}`);
        const pop = await populate(gws, count);
        await endAll(dir, pop, gws, gws[0]!);
        // Kill whichever gateway is delivering, in the middle of a session_ended.
        const pids = gws.map((g) => g.listeningPids()[0]!);
        const victim = pids.indexOf(await deliveringPid(dir, pids, 20_000));
        sigkill(pids[victim]!);
        const killedAt = Date.now();
        const killed = gws[victim]!;
        await killed.exited;
        gws[victim] = await serve(configs[victim]!);
        const users = pop.sessions.map((_, i) => `u${i}`);
        const took = await allEnded(dir, 'rec', users, 15_000 + count * delay);
        const afterKill = Date.now() - killedAt;
        await drained(gws[0]!, dir, 20_000);
        const calls = readCalls(shared(dir).calls);
        const logs = [...gws, killed].flatMap((g) => g.logs());
        const v = judge({ calls, plugin: 'rec', killed: new Set([pids[victim]!]), logs });
        const takeover = takeoverMs(calls, pids[victim]!, killedAt);
        const byOthers = calls.filter(
          (c) => c.hook === 'session_ended' && c.phase === 'start' && c.t > killedAt,
        );
        console.log(
          `# SIGKILL while delivering: all ended ${afterKill} ms after the kill (waited ${took} ms); ` +
            `first delivery by another process ${byOthers.length ? byOthers[0]!.t - killedAt : NaN} ms after; ` +
            `the cut-off delivery again ${takeover} ms after; median completion ` +
            `${median(calls.filter((c) => c.phase === 'end' && c.t > killedAt).map((c) => c.t - killedAt))} ms after; ${summary(v)}`,
        );
        assert.deepEqual(v.problems, [], summary(v));
        assert.ok(afterKill < 10_000 + count * delay, `took ${afterKill} ms after the kill`);
      },
    );
  });
}
