import { Cluster } from 'ioredis';
import type { RedisClient } from './connect.js';
import { keySlot } from './keys.js';
import type { ScriptRunner } from './scripts.js';

/** One validate waiting for its batch: the script's arguments and where its answer goes. */
interface Pending {
  key: string;
  now: string;
  res: string;
  order: string;
  known: string;
  resolve: (reply: unknown) => void;
  reject: (err: unknown) => void;
}

/** Sessions per script call: bounds how long one call holds the server (about 5 µs each). */
const MAX_BATCH = 64;
/** How long a touch written behind its answer (lazyTouch) may wait for company, ms. */
const BEHIND_MS = 100;

/**
 * Groups the validations issued in one turn of the event loop by the server that holds their
 * sessions and sends each group as ONE script call (validateMany). ioredis costs several
 * microseconds of JavaScript per command; one command per group instead of per session is what
 * lets one process validate well past 80,000 sessions a second. Each session's check-and-touch
 * is still one atomic step (a script runs alone on its server); a batch only shares the trip.
 *
 * In a cluster the groups follow the client's slot map. If it is stale (a failover, a
 * resharding) the server refuses the batch and its sessions are validated one by one, which
 * follows MOVED/ASK like every other call.
 */
export class ValidateBatcher {
  private readonly groups = new Map<string, Pending[]>();
  private scheduled = false;
  /** Touches nobody waits for: sent with the next batch, or after BEHIND_MS at the latest. */
  private behind: Pending[] = [];
  private behindTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: RedisClient,
    private readonly scripts: ScriptRunner,
  ) {}

  /**
   * The raw VALIDATE answer for the session at `key`. `behind`: nobody waits for this answer
   * (a touch written after the request was answered), so it may wait up to BEHIND_MS to share
   * a call with others: a busy gateway's touches then cost a call per few dozen sessions.
   */
  validate(
    key: string,
    now: string,
    res: string,
    order: string,
    known: string,
    behind = false,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const pending: Pending = { key, now, res, order, known, resolve, reject };
      if (behind) {
        this.behind.push(pending);
        if (this.behind.length >= MAX_BATCH) this.schedule();
        else this.behindTimer ??= setTimeout(() => this.flush(), BEHIND_MS).unref();
        return;
      }
      this.enqueue(pending);
      this.schedule();
    });
  }

  private enqueue(p: Pending): void {
    const node = this.nodeOf(p.key);
    let group = this.groups.get(node);
    if (!group) this.groups.set(node, (group = []));
    group.push(p);
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // At the end of this turn of the event loop: the validations of every request whose
    // bytes arrived in this poll phase join one batch. (process.nextTick would flush after
    // each socket's callback: a batch per request, and a socket write per request, which
    // on loopback costs more CPU than the script.)
    setImmediate(() => this.flush());
  }

  /** Send everything waiting now (before the connection closes). */
  drain(): void {
    if (this.behind.length > 0 || this.groups.size > 0) this.flush();
  }

  private nodeOf(key: string): string {
    if (!(this.client instanceof Cluster)) return '';
    return this.client.slots[keySlot(key)]?.[0] ?? '';
  }

  private flush(): void {
    this.scheduled = false;
    // Waiting touches ride along with whatever goes out now, ahead of it: they were made first
    // (a later validation of the same session then finds the touch written).
    clearTimeout(this.behindTimer);
    this.behindTimer = undefined;
    const regular = [...this.groups.values()];
    this.groups.clear();
    for (const p of this.behind) this.enqueue(p);
    this.behind = [];
    for (const group of regular) for (const p of group) this.enqueue(p);
    const groups = [...this.groups.values()];
    this.groups.clear();
    for (const group of groups) {
      for (let i = 0; i < group.length; i += MAX_BATCH) this.send(group.slice(i, i + MAX_BATCH));
    }
  }

  private send(batch: Pending[]): void {
    if (batch.length === 1) {
      const p = batch[0]!;
      this.scripts.run('sgValidate', p.key, p.now, p.res, p.order, p.known).then(p.resolve, p.reject);
      return;
    }
    const args: string[] = [String(batch.length)];
    for (const p of batch) args.push(p.key, p.now, p.res, p.order, p.known);
    this.scripts.run('sgValidateMany', batch[0]!.key, ...args).then(
      (replies) => batch.forEach((p, i) => p.resolve((replies as unknown[])[i])),
      () => {
        // A moved slot, a node gone: validate each on its own (those follow redirections).
        for (const p of batch)
          this.scripts.run('sgValidate', p.key, p.now, p.res, p.order, p.known).then(p.resolve, p.reject);
      },
    );
  }
}
