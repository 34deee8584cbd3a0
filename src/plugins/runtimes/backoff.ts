import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';

/** How a plugin process that cannot stay up is held back. */
export interface BackoffSettings {
  /** The delay after the first quick exit; it doubles with each further one. Default 250 ms. */
  baseMs: number;
  /** The longest delay. Default 30 s. */
  maxMs: number;
  /** A process that answered a call, or lived this long, was up: its exit restarts at once. Default 10 s. */
  stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { baseMs: 250, maxMs: 30_000, stableMs: 10_000 };

/** What a process plugin's restarts look like now (`PluginRuntime.status`). */
export interface RestartStatus {
  /** `down`: it exited quickly and the next start waits (`next_start_at`). */
  state: 'stopped' | 'running' | 'down';
  /** Processes started, the first included. */
  starts: number;
  /** Exits in a row of processes that never came up (answered nothing, lived < stableMs). */
  quick_exits: number;
  /** The last exit, e.g. `exited (1)`; null before any. */
  last_exit: string | null;
  /** When the next start is allowed (ISO time), while `down`. */
  next_start_at: string | null;
}

/**
 * Restart bookkeeping for a plugin process: a process that exits before it ever came up
 * (answered a call, or stayed up `stableMs`) is a quick exit, and the next start waits
 * `baseMs * 2^(n-1)` (at most `maxMs`) after the n-th quick exit in a row. One that was up
 * restarts at once and clears the count. Calls in the waiting time fail at once instead of
 * starting a process per call.
 *
 * @example
 * ```ts
 * const backoff = new RestartBackoff(DEFAULT_BACKOFF, clock);
 * if (backoff.waitMs() > 0) throw new Error('plugin is down');
 * backoff.started();   // ... later, on 'exit':
 * const quick = backoff.exited('exited (1)');
 * ```
 */
export class RestartBackoff {
  private startedAt: number | null = null;
  private answered = false;
  private starts = 0;
  private quickExits = 0;
  private lastExit: string | null = null;
  private nextStartAt = 0;

  constructor(
    private readonly settings: BackoffSettings = DEFAULT_BACKOFF,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Milliseconds until a start is allowed (0: now). */
  waitMs(): number {
    return Math.max(0, this.nextStartAt - this.clock.now());
  }

  started(): void {
    this.starts++;
    this.startedAt = this.clock.now();
    this.answered = false;
  }

  /** The running process answered a call: it came up. */
  answer(): void {
    this.answered = true;
  }

  /** The process ended on its own; true when it was a quick exit (the next start waits). */
  exited(how: string): boolean {
    const now = this.clock.now();
    const wasUp =
      this.answered || (this.startedAt !== null && now - this.startedAt >= this.settings.stableMs);
    this.startedAt = null;
    this.lastExit = how;
    if (wasUp) {
      this.quickExits = 0;
      this.nextStartAt = 0;
      return false;
    }
    this.quickExits++;
    const delay = Math.min(this.settings.maxMs, this.settings.baseMs * 2 ** (this.quickExits - 1));
    this.nextStartAt = now + delay;
    return true;
  }

  /** The gateway stopped the process itself (a hung call, an oversized answer): not its fault. */
  stopped(how: string): void {
    this.startedAt = null;
    this.lastExit = how;
  }

  status(): RestartStatus {
    const wait = this.waitMs();
    return {
      state: this.startedAt !== null ? 'running' : wait > 0 ? 'down' : 'stopped',
      starts: this.starts,
      quick_exits: this.quickExits,
      last_exit: this.lastExit,
      next_start_at: wait > 0 ? new Date(this.nextStartAt).toISOString() : null,
    };
  }
}
