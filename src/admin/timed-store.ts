import { performance } from 'node:perf_hooks';
import type { SessionStore } from '../store/contract.js';

/** Methods of the store contract that are timed (everything but `dispose`). */
const TIMED = [
  'create',
  'get',
  'validate',
  'update',
  'rekey',
  'close',
  'closeExpired',
  'listByUser',
  'list',
  'ensureSubscriber',
  'claim',
  'ack',
  'retry',
  'fail',
  'renew',
  'release',
  'stats',
  'countFailure',
  'failures',
  'uncountFailure',
  'clearFailures',
] as const satisfies readonly (keyof SessionStore)[];

/** Optional methods: timed when the store has them, absent when it has not (callers check). */
const TIMED_OPTIONAL = ['tag', 'findByTag'] as const satisfies readonly (keyof SessionStore)[];

/**
 * A store that reports the duration of every operation to `observe(op, seconds)` and
 * otherwise behaves exactly like `store` (same errors, same results). Costs one
 * `performance.now()` pair and a histogram update per call.
 *
 * @example
 * ```ts
 * const store = timedStore(await openStore(url), metrics.observeStore);
 * ```
 */
export function timedStore(
  store: SessionStore,
  observe: (op: string, seconds: number) => void,
): SessionStore {
  const timed: Record<string, unknown> = {
    kind: store.kind,
    capabilities: store.capabilities,
    dispose: () => store.dispose(),
  };
  const now = store.validateNow?.bind(store);
  if (now) {
    // The synchronous form of validate, timed as validate when it answered (when it did not,
    // the caller goes on to validate, which is timed itself: one lookup, counted once).
    timed.validateNow = (...args: Parameters<typeof now>) => {
      const t0 = performance.now();
      const answer = now(...args);
      if (answer) observe('validate', (performance.now() - t0) / 1000);
      return answer;
    };
  }
  const ops = [...TIMED, ...TIMED_OPTIONAL.filter((op) => typeof store[op] === 'function')];
  for (const op of ops) {
    const call = (store[op] as (...args: unknown[]) => Promise<unknown>).bind(store);
    timed[op] = async (...args: unknown[]) => {
      const t0 = performance.now();
      try {
        return await call(...args);
      } finally {
        observe(op, (performance.now() - t0) / 1000);
      }
    };
  }
  return timed as unknown as SessionStore;
}
