/** Counts and durations of hook calls by plugin and hook, for metrics and `stats`. */
export interface HookCounters {
  calls: number;
  failures: Record<string, number>;
  totalMs: number;
}

export class HookStats {
  private readonly byKey = new Map<string, HookCounters>();

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
