// `sessiongate serve --workers 2` on SQLite: a worker SIGKILLed while it delivers
// session_ended. The primary starts another; every session the plugin took part in gets
// session_ended exactly once (only the delivery the kill cut off may come again, flagged
// redelivered), and the other worker takes the killed one's records over within seconds.
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { freePort, killAll, serve, shared, sigkill, until, writeConfig } from './gateways.js';
import { judge, judgeAudit, readCalls, readCloses, summary, takeoverMs } from './oracle.js';
import {
  allAudited,
  allEnded,
  deliveringPid,
  drained,
  endAll,
  populate,
  scenarioDir,
  setBehaviour,
} from './scenario.js';

after(() => killAll());

it(
  '--workers 2 on sqlite, a worker SIGKILLed while delivering: once per session, takeover within seconds',
  { timeout: 120_000 },
  async () => {
    const count = 36;
    const delay = 200;
    const dir = scenarioDir('workers');
    setBehaviour(dir, { session_ended: { delay_ms: delay } });
    const config = {
      dir,
      file: 'gw.yaml',
      port: await freePort(),
      adminPort: await freePort(),
      store: 'sqlite:./sessions.db',
      plugins: [{ name: 'rec', timeoutMs: 5000 }],
    };
    writeConfig(config);
    const gw = await serve(config, 2);
    const workers = gw.listeningPids();
    const pop = await populate([gw], count);
    await endAll(dir, pop, [gw], gw);
    const victim = await deliveringPid(dir, workers, 20_000);
    sigkill(victim);
    const killedAt = Date.now();
    await until('the primary starting another worker', () => gw.listeningPids().length >= 3, 45_000, gw);
    const users = pop.sessions.map((_, i) => `u${i}`);
    await allEnded(dir, 'rec', users, 15_000 + count * delay);
    const afterKill = Date.now() - killedAt;
    await drained(gw, dir, 20_000);
    const calls = readCalls(shared(dir).calls);
    const v = judge({ calls, plugin: 'rec', killed: new Set([victim]), logs: gw.logs() });
    console.log(
      `# --workers 2, worker ${victim} SIGKILLed: all ended ${afterKill} ms after the kill; ` +
        `the cut-off delivery again ${takeoverMs(calls, victim, killedAt)} ms after; ${summary(v)}`,
    );
    assert.deepEqual(v.problems, [], summary(v));
    assert.ok(afterKill < 10_000 + count * delay, `took ${afterKill} ms after the kill`);
    const ids = [...pop.sessions.map((s) => s.id), ...pop.unfinished];
    await allAudited(dir, ids, 10_000);
    assert.deepEqual(judgeAudit(readCloses(shared(dir).audit), ids, true), []);
    gw.proc.kill('SIGTERM');
    await gw.exited;
  },
);
