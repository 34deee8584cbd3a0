import type { JsonObject } from '../core/session-types.js';

/**
 * The hooks this process is running, per session and plugin. A session can close while one of
 * its plugin's hooks runs; that plugin's session_ended must then wait for the hook and see the
 * cookie it returned (a credential checked out by the hook is checked in at session_ended), which
 * the close snapshot, taken before the hook returned, does not hold.
 *
 * @example
 * ```ts
 * const done = inFlight.begin(sessionId, 'vault');
 * // ... the hook runs; the session closes; saving its cookie fails ...
 * done({ checked_out: ['root@db1'] });
 * await inFlight.settled(sessionId, 'vault'); // → { checked_out: ['root@db1'] }
 * ```
 */
export class HooksInFlight {
  private readonly running = new Map<string, { count: number; settled: Promise<void> }>();
  private readonly late = new Map<string, JsonObject>();

  /**
   * Note a hook starting; call the returned function when it ended, with the cookie it returned
   * when that cookie could not be saved because the session was gone.
   */
  begin(sessionId: string, plugin: string): (lateCookie: JsonObject | undefined) => void {
    const key = keyOf(sessionId, plugin);
    let finish!: () => void;
    const mine = new Promise<void>((resolve) => (finish = resolve));
    const before = this.running.get(key);
    const entry = {
      count: (before?.count ?? 0) + 1,
      settled: before ? Promise.all([before.settled, mine]).then(() => undefined) : mine,
    };
    this.running.set(key, entry);
    return (lateCookie) => {
      if (lateCookie !== undefined) this.late.set(key, lateCookie);
      const now = this.running.get(key);
      if (now && --now.count === 0) this.running.delete(key);
      finish();
    };
  }

  /**
   * Wait for this process's hooks of the session and plugin to end, then hand over (once) the
   * cookie a hook returned after the session closed, if any.
   */
  async settled(sessionId: string, plugin: string): Promise<JsonObject | undefined> {
    const key = keyOf(sessionId, plugin);
    const entry = this.running.get(key);
    if (entry) await entry.settled;
    const cookie = this.late.get(key);
    this.late.delete(key);
    return cookie;
  }
}

function keyOf(sessionId: string, plugin: string): string {
  return `${plugin}\u0000${sessionId}`;
}
