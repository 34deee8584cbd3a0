import type { FailureCount } from '../contract.js';
import type { RedisClient } from './connect.js';
import type { RedisKeys } from './keys.js';
import type { ScriptRunner } from './scripts.js';

/**
 * The failure counters of the redis store (logon throttling): one key per counter, in its own
 * hash tag (so one cluster slot per counter, no multi-key step), with a TTL of the window. No
 * KEYS or SCAN: every call names its key.
 *
 * @example
 * ```ts
 * const counters = new RedisFailureCounters(client, scripts, keys);
 * await counters.count('user:ab12', 900_000, now); // { count: 1, resetAt: now + 900_000 }
 * ```
 */
export class RedisFailureCounters {
  constructor(
    private readonly client: RedisClient,
    private readonly scripts: ScriptRunner,
    private readonly keys: RedisKeys,
  ) {}

  async count(key: string, windowMs: number, now: number): Promise<FailureCount> {
    const window = Math.max(1, Math.ceil(windowMs));
    const [n, r] = (await this.scripts.run('sgCountFailure', this.keys.failures(key), now, window)) as [
      number,
      string,
    ];
    return { count: Number(n), resetAt: Number(r) };
  }

  async get(key: string, now: number): Promise<FailureCount> {
    const [n, r] = await this.client.hmget(this.keys.failures(key), 'n', 'r');
    const resetAt = Number(r ?? 0);
    return resetAt > now ? { count: Number(n ?? 0), resetAt } : { count: 0, resetAt: now };
  }

  async uncount(key: string, now: number): Promise<void> {
    await this.scripts.run('sgUncountFailure', this.keys.failures(key), now);
  }

  async clear(key: string): Promise<void> {
    await this.client.del(this.keys.failures(key));
  }
}
