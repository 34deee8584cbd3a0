/**
 * Deadlines for many short tasks on one timer. A `setTimeout` per task costs a timer-list
 * insert and removal and a closure on the request path; here a task costs a set entry, and
 * one unref'd interval (running only while tasks are pending) fails those past their time.
 * The price is precision: a task fails between `ms` and `ms + tick` after it started.
 *
 * @example
 * ```ts
 * const watchdog = new Watchdog(50);
 * const value = await watchdog.within(handler(), 1000, () => new Error('ran past 1000 ms'));
 * ```
 */
export class Watchdog {
  private readonly pending = new Set<Pending>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tickMs: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  /** `work`'s outcome, or a rejection with `onTimeout()` if it has not settled within `ms`. */
  within<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // A class instance, not an object with a closure: this runs for every awaited rule.
      const entry = new Pending(this.now() + ms, reject, onTimeout);
      this.pending.add(entry);
      this.timer ??= setInterval(() => this.check(), this.tickMs).unref();
      work.then(
        (value) => {
          this.pending.delete(entry);
          resolve(value);
        },
        (err: unknown) => {
          this.pending.delete(entry);
          reject(err as Error);
        },
      );
    });
  }

  private check(): void {
    const now = this.now();
    for (const entry of this.pending) {
      if (entry.at > now) continue;
      this.pending.delete(entry);
      entry.reject(entry.onTimeout());
    }
    if (this.pending.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

class Pending {
  constructor(
    readonly at: number,
    readonly reject: (err: Error) => void,
    readonly onTimeout: () => Error,
  ) {}
}
