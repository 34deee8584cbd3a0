import type { RestartStatus } from './runtimes/backoff.js';

/** Counts and durations of hook calls by plugin and hook, for metrics and `stats`. */
export interface HookCounters {
  calls: number;
  failures: Record<string, number>;
  totalMs: number;
}

/** A plugin with a process of its own and how it is doing (starts, quick exits, backoff). */
export interface PluginFigures {
  plugin: string;
  status: RestartStatus;
}

export class HookStats {
  private readonly byKey = new Map<string, HookCounters>();
  private readonly runtimes = new Map<string, { status?(): RestartStatus }>();

  /** Report `runtime.status()` in `plugins()` (runtimes without a process have none). */
  watch(plugin: string, runtime: { status?(): RestartStatus }): void {
    this.runtimes.set(plugin, runtime);
  }

  /**
   * The status of every plugin that runs a process: `state` is `down` while a process that
   * keeps exiting before it comes up waits for its next start.
   *
   * @example
   * ```ts
   * host.stats.plugins(); // → [{ plugin: 'legacy', status: { state: 'down', starts: 4, quick_exits: 4, ... } }]
   * ```
   */
  plugins(): PluginFigures[] {
    return [...this.runtimes].flatMap(([plugin, r]) => {
      const status = r.status?.();
      return status ? [{ plugin, status }] : [];
    });
  }

  record(plugin: string, hook: string, ms: number, failure?: string): void {
    const key = `${plugin}\0${hook}`;
    let c = this.byKey.get(key);
    if (!c) this.byKey.set(key, (c = { calls: 0, failures: {}, totalMs: 0 }));
    c.calls++;
    c.totalMs += ms;
    if (failure) c.failures[failure] = (c.failures[failure] ?? 0) + 1;
  }

  get(plugin: string, hook: string): HookCounters {
    return this.byKey.get(`${plugin}\0${hook}`) ?? { calls: 0, failures: {}, totalMs: 0 };
  }

  all(): { plugin: string; hook: string; counters: HookCounters }[] {
    return [...this.byKey].map(([k, counters]) => {
      const [plugin = '', hook = ''] = k.split('\0');
      return { plugin, hook, counters };
    });
  }
}
