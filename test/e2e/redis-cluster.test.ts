// Two `sessiongate serve` processes on a 3 + 3 Redis cluster (durability=replicated), a master
// SIGKILLed while session_ended is being delivered and sessions are logging on: every session a
// plugin took part in still gets session_ended exactly once, and the audit trail one close.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import {
  clusterNodes,
  redisRequired,
  redisSkip,
  startCluster,
  type RedisCluster,
} from '../support/redis-servers.js';
import { inParallel, logon, send, type LoggedOn } from './driver.js';
import { freePort, killAll, serve, shared, until, writeConfig } from './gateways.js';
import { judge, judgeAudit, readCalls, readCloses, summary } from './oracle.js';
import { allAudited, allEnded, endAll, populate, scenarioDir, setBehaviour } from './scenario.js';

const skip = redisSkip();

if (skip && redisRequired()) {
  it('redis-server is installed (required under CI=true)', () => assert.fail(skip));
} else {
  describe('exactly once: a Redis cluster master fails over', { skip: skip || undefined }, () => {
    let cluster: RedisCluster | undefined;
    after(async () => {
      killAll();
      await cluster?.stop();
    });

    it('session_ended once per session across the failover', { timeout: 150_000 }, async () => {
      cluster = await startCluster();
      const dir = scenarioDir('cluster');
      setBehaviour(dir, { session_ended: { delay_ms: 100 } });
      const store = `${cluster.url}?prefix=cl${process.pid}&durability=replicated`;
      const plugins = [{ name: 'rec', timeoutMs: 5000 }];
      const configs = [
        { dir, file: 'gw-a.yaml', port: await freePort(), adminPort: await freePort(), store, plugins },
        { dir, file: 'gw-b.yaml', port: await freePort(), store, plugins },
      ];
      for (const c of configs) writeConfig(c);
      const gws = [await serve(configs[0]!), await serve(configs[1]!)];
      const before = await populate(gws, 24);
      await endAll(dir, before, gws, gws[0]!);
      await until(
        'session_ended being delivered',
        () => readCalls(shared(dir).calls).some((c) => c.hook === 'session_ended'),
        20_000,
      );
      const seen = await clusterNodes(cluster.nodes[0]!.port);
      const master = seen.find((n) => n.flags.includes('master') && n.slots.length > 0)!;
      const victim = cluster.nodes.find((n) => n.port === master.port)!;
      victim.kill('SIGKILL');
      const killedAt = Date.now();
      // Logons while the cluster fails over: some fail (5xx), that is fine; those the plugin
      // took part in must still get their session_ended.
      const during = await inParallel(
        Array.from({ length: 12 }, (_, i) => i),
        2,
        (i) => logon(gws[i % 2]!.base, `v${i}`, 'admin_kill', i % 2).catch(() => undefined),
      );
      // With durability=replicated the promoted replica takes writes only once a replica is
      // behind it again (docs/redis.md): the operator restarts the dead node, which rejoins.
      await victim.exited;
      await victim.restart();
      const bearer = readFileSync(shared(dir).token, 'utf8').trim();
      // End every v session the store knows, whether or not its logon answered (retried through
      // the failover).
      for (let i = 0; i < 12; i++) {
        const url = `${gws[0]!.adminBase!}/api/v1/sessions?user=v${i}`;
        const end = Date.now() + 20_000;
        for (;;) {
          const r = await send(url, { authorization: `Bearer ${bearer}` }, 'DELETE').catch(() => undefined);
          if (r?.status === 200) break;
          if (Date.now() > end) throw new Error(`DELETE ${url}: ${r?.status} ${r?.body}`);
          await new Promise((ok) => setTimeout(ok, 200));
        }
      }
      const calls = () => readCalls(shared(dir).calls);
      const participants = [
        ...new Set(calls().flatMap((c) => (c.hook === 'authenticate' && c.user ? [c.user] : []))),
      ];
      await allEnded(dir, 'rec', participants, 30_000).catch(async (err: Error) => {
        const warned = gws.flatMap((g) => g.logs()).filter((l) => l.level >= 40);
        const tail = warned.slice(-6).map((l) => JSON.stringify(l).slice(0, 300));
        const probes = await Promise.all(
          gws.map((g, i) =>
            logon(g.base, `probe${i}`, 'logout', i).then(
              () => 'logon ok',
              (e: Error) => e.message,
            ),
          ),
        );
        tail.push(`a logon now, per gateway: ${probes.join(' | ')}`);
        throw new Error(
          `${err.message}\n${warned.length} warn/error log lines, the last:\n${tail.join('\n')}`,
        );
      });
      const v = judge({ calls: calls(), plugin: 'rec', logs: gws.flatMap((g) => g.logs()) });
      const answered = during.filter((s): s is LoggedOn => s !== undefined);
      console.log(
        `# cluster failover: master ${master.port} SIGKILLed, restarted as a replica; ${answered.length}/12 logons during it answered; ` +
          `all ended ${Date.now() - killedAt} ms after the kill; ${summary(v)}`,
      );
      assert.deepEqual(v.problems, [], summary(v));
      const ids = [...before.sessions.map((s) => s.id), ...before.unfinished, ...answered.map((s) => s.id)];
      await allAudited(dir, ids, 20_000);
      assert.deepEqual(judgeAudit(readCloses(shared(dir).audit), ids, false), []);
    });
  });
}
