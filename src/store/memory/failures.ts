import type { FailureCount } from '../contract.js';

/** How many of the oldest counters each new window looks at for ones that ended. */
const PRUNE_LOOK = 8;

/**
 * The failure counters of the memory store (logon throttling): fixed windows that open at
 * the first failure. Kept in insertion order (a new window re-inserts its key), so the
 * oldest windows come first and each new window drops a few ended ones: a burst of new names
 * cannot make the map grow without bound once its windows end.
 *
 * @example
 * ```ts
 * const counters = new MemoryFailureCounters();
 * counters.count('user:ab12', 900_000, now); // { count: 1, resetAt: now + 900_000 }
 * ```
 */
export class MemoryFailureCounters {
  private readonly counters = new Map<string, FailureCount>();

  count(key: string, windowMs: number, now: number): FailureCount {
    const current = this.counters.get(key);
    if (current && now < current.resetAt) {
      current.count++;
      return { ...current };
    }
    this.prune(now);
    const fresh = { count: 1, resetAt: now + windowMs };
    this.counters.delete(key);
    this.counters.set(key, fresh);
    return { ...fresh };
  }

  get(key: string, now: number): FailureCount {
    const current = this.counters.get(key);
    return current && now < current.resetAt ? { ...current } : { count: 0, resetAt: now };
  }

  uncount(key: string, now: number): void {
    const current = this.counters.get(key);
    if (current && now < current.resetAt && current.count > 0) current.count--;
  }

  clear(key: string): void {
    this.counters.delete(key);
  }

  /** Counters held, ended or not (tests). */
  get size(): number {
    return this.counters.size;
  }

  private prune(now: number): void {
    let looked = 0;
    for (const [key, c] of this.counters) {
      if (++looked > PRUNE_LOOK) break;
      if (c.resetAt <= now) this.counters.delete(key);
    }
  }
}
