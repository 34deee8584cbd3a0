import { ManualClock } from '../../src/core/clock.js';
import { SessionEngine, type EngineOptions } from '../../src/session/engine.js';
import { Keyring } from '../../src/session/keyring.js';
import { MemoryStore } from '../../src/store/memory/store.js';

/** A memory-store engine on a manual clock, for tests that drive time by hand. */
export function testEngine(over: Partial<EngineOptions> = {}): { engine: SessionEngine; clock: ManualClock } {
  const clock = new ManualClock();
  const engine = new SessionEngine({
    store: new MemoryStore(),
    keyring: Keyring.ephemeral(),
    clock,
    ...over,
  });
  return { engine, clock };
}

/** Create `n` allowed sessions and remove them: `n` close records, ids in close order. */
export async function closeSessions(engine: SessionEngine, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = await engine.create({ state: 'allow' });
    await engine.remove(s.id);
    ids.push(s.id);
  }
  return ids;
}
