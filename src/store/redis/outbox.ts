import { SessionGateError } from '../../core/errors.js';
import type { ClaimedClose, ClaimOptions, ReleaseOptions } from '../contract.js';
import { decodeEntry, orderOf, parseSeq, seqOf } from './codec.js';
import type { RedisKeys } from './keys.js';
import type { RedisClient } from './connect.js';
import type { ScriptRunner } from './scripts.js';

interface Candidate {
  shard: number;
  id: string;
  due: boolean;
  order: number;
}

/**
 * The outbox of the redis store: one Stream per shard, one consumer group per subscriber.
 *
 * Due-ness is decided from our own lease times (a ZSET per shard and subscriber: member = entry
 * id, score = lease end, or retry time once released), never from the server's idle times, so
 * the caller's `now` is the only clock. The PEL still follows ownership: new entries are read
 * with XREADGROUP, taken-over ones moved with XCLAIM.
 *
 * A claim looks at every shard (one cheap read-only script each, pipelined), merges what they
 * offer by close order (expired leases and retries first, as memory/store.ts does), and then leases
 * exactly the chosen entries shard by shard, re-checking each in the leasing script.
 */
export class RedisOutbox {
  constructor(
    private readonly client: RedisClient,
    private readonly scripts: ScriptRunner,
    private readonly keys: RedisKeys,
    private readonly replicate: (keys: string[]) => Promise<void>,
  ) {}

  /** Subscribers whose last look found nothing, and until when that answer holds. */
  private readonly idle = new Map<string, IdleMark>();

  /** Closes made anywhere change the hint: call after every close (best effort, see IdleMark). */
  noteCloses(): Promise<unknown> {
    return this.client.incr(this.keys.outboxHint());
  }

  private get allShards(): number[] {
    return Array.from({ length: this.keys.shards }, (_, s) => s);
  }

  async ensure(name: string): Promise<void> {
    checkName(name);
    await Promise.all(
      this.allShards.map((s) => this.scripts.run('sgObEnsure', this.keys.stream(s), this.keys.base(s), name)),
    );
    await this.replicate(this.allShards.map((s) => this.keys.stream(s)));
  }

  async claim(name: string, consumer: string, o: ClaimOptions): Promise<ClaimedClose[]> {
    checkName(name);
    const limit = Math.max(0, Math.floor(o.limit));
    if (limit === 0) return [];
    // Read the hint before looking, so a close made meanwhile always changes it.
    const hint = await this.client.get(this.keys.outboxHint());
    if (this.idle.get(name)?.stillIdle(hint, o.now)) return [];
    this.idle.delete(name);
    const offers = (await Promise.all(
      this.allShards.map((s) =>
        this.scripts.run('sgObPeek', this.keys.stream(s), this.keys.base(s), name, String(o.now), limit),
      ),
    )) as (string | number)[][];
    const candidates: Candidate[] = [];
    let nextLease = Infinity;
    offers.forEach((offer, shard) => {
      if (offer[0] !== '') nextLease = Math.min(nextLease, Number(offer[0]));
      const nDue = Number(offer[1]);
      for (let i = 2; i < offer.length; i++) {
        const id = String(offer[i]);
        candidates.push({ shard, id, due: i < nDue + 2, order: orderOf(id) });
      }
    });
    candidates.sort(byClaimOrder);
    const perShard = new Map<number, { due: string[]; fresh: number }>();
    for (const c of candidates.slice(0, limit)) {
      let take = perShard.get(c.shard);
      if (!take) perShard.set(c.shard, (take = { due: [], fresh: 0 }));
      if (c.due) take.due.push(c.id);
      else take.fresh++;
    }
    const batches = await Promise.all(
      [...perShard].map(async ([shard, take]) => {
        const got = (await this.scripts.run(
          'sgObClaim',
          this.keys.stream(shard),
          this.keys.base(shard),
          name,
          consumer,
          String(o.now),
          String(o.leaseMs),
          take.fresh,
          ...take.due,
        )) as [string, number, number, string[]][];
        return got.map(([id, attempt, redelivered, fields]) => ({
          ...decodeEntry(shard, id, fields),
          attempt,
          redelivered: redelivered === 1,
          due: attempt > 1,
          shard,
        }));
      }),
    );
    const out = batches.flat();
    if (out.length === 0) this.idle.set(name, new IdleMark(hint, nextLease, o.now));
    if (out.length > 0) await this.replicate([...perShard.keys()].map((s) => this.keys.stream(s)));
    out.sort((a, b) =>
      byClaimOrder(
        { due: a.due, order: orderOf(a.seq.slice(a.seq.indexOf(':') + 1)), shard: a.shard },
        { due: b.due, order: orderOf(b.seq.slice(b.seq.indexOf(':') + 1)), shard: b.shard },
      ),
    );
    return out.map(({ due: _d, shard: _s, ...rec }) => rec);
  }

  async ack(name: string, seq: string): Promise<void> {
    await this.onEntry(name, seq, (key, base, id) => this.scripts.run('sgObAck', key, base, name, id));
  }

  async retry(name: string, seq: string, retryAt: number): Promise<void> {
    await this.onEntry(name, seq, (key, base, id) =>
      this.scripts.run('sgObRetry', key, base, name, id, String(retryAt)),
    );
  }

  async fail(name: string, seq: string, error: string, now: number): Promise<void> {
    await this.onEntry(name, seq, (key, base, id) =>
      this.scripts.run('sgObFail', key, base, name, id, error, String(now)),
    );
  }

  async renew(name: string, consumer: string, seqs: string[], leaseUntil: number): Promise<string[]> {
    checkName(name);
    const held = await Promise.all(
      [...this.byShard(seqs)].map(async ([shard, ids]) => {
        const kept = (await this.scripts.run(
          'sgObRenew',
          this.keys.stream(shard),
          this.keys.base(shard),
          name,
          consumer,
          String(leaseUntil),
          ...ids,
        )) as string[];
        return kept.map((id) => seqOf(shard, String(id)));
      }),
    );
    const kept = new Set(held.flat());
    return seqs.filter((seq) => kept.has(seq));
  }

  async release(name: string, consumer: string, seqs: string[], o: ReleaseOptions): Promise<void> {
    checkName(name);
    this.idle.delete(name);
    const shards = this.byShard(seqs);
    await Promise.all(
      [...shards].map(([shard, ids]) =>
        this.scripts.run(
          'sgObRelease',
          this.keys.stream(shard),
          this.keys.base(shard),
          name,
          consumer,
          String(o.now),
          o.interrupted ? '1' : '0',
          ...ids,
        ),
      ),
    );
    await this.replicate([...shards.keys()].map((s) => this.keys.stream(s)));
  }

  /**
   * Per subscriber, summed over shards: entries leased or waiting (incl. undelivered), failed;
   * and the close time of its oldest unfinished entry over all shards.
   */
  async counts(): Promise<{
    pending: Record<string, number>;
    failed: Record<string, number>;
    oldest: Record<string, number>;
  }> {
    const perShard = (await Promise.all(
      this.allShards.map((s) => this.scripts.run('sgObStats', this.keys.stream(s), this.keys.base(s))),
    )) as (string | number)[][];
    const pending: Record<string, number> = {};
    const failed: Record<string, number> = {};
    const oldest: Record<string, number> = {};
    for (const flat of perShard) {
      for (let i = 0; i + 3 < flat.length; i += 4) {
        const name = String(flat[i]);
        pending[name] = (pending[name] ?? 0) + Number(flat[i + 1]);
        failed[name] = (failed[name] ?? 0) + Number(flat[i + 2]);
        if (flat[i + 3] === '') continue;
        const at = Number(flat[i + 3]);
        if (oldest[name] === undefined || at < oldest[name]) oldest[name] = at;
      }
    }
    return { pending, failed, oldest };
  }

  /** Stream ids of the given seqs, by shard (seqs this store never handed out are left out). */
  private byShard(seqs: string[]): Map<number, string[]> {
    const out = new Map<number, string[]>();
    for (const seq of seqs) {
      const at = parseSeq(seq, this.keys.shards);
      if (!at) continue;
      const ids = out.get(at.shard);
      if (ids) ids.push(at.id);
      else out.set(at.shard, [at.id]);
    }
    return out;
  }

  private async onEntry(
    name: string,
    seq: string,
    call: (key: string, base: string, id: string) => Promise<unknown>,
  ): Promise<void> {
    checkName(name);
    this.idle.delete(name);
    const at = parseSeq(seq, this.keys.shards);
    if (!at) return; // not a position this store handed out: nothing holds it
    await call(this.keys.stream(at.shard), this.keys.base(at.shard), at.id);
    await this.replicate([this.keys.stream(at.shard)]);
  }
}

/** How long an idle answer may be reused without looking, in the caller's clock (ms). */
const RESCAN_MS = 5000;

/**
 * "Nothing to claim for this subscriber" from the last full look over the shards. It holds
 * while no close happened anywhere (the hint, `P:{outbox}` INCRed after every close, is
 * unchanged), no lease or retry time has come, and for at most RESCAN_MS: the hint is written
 * after the close script, so a process dying between the two is covered by that bound. An idle
 * dispatcher then costs one GET per claim instead of one script per shard.
 */
class IdleMark {
  constructor(
    private readonly hint: string | null,
    private readonly nextLease: number,
    private readonly at: number,
  ) {}

  stillIdle(hint: string | null, now: number): boolean {
    return hint === this.hint && now < this.nextLease && now >= this.at && now - this.at < RESCAN_MS;
  }
}

function byClaimOrder(
  a: Pick<Candidate, 'due' | 'order' | 'shard'>,
  b: Pick<Candidate, 'due' | 'order' | 'shard'>,
): number {
  if (a.due !== b.due) return a.due ? -1 : 1;
  return a.order - b.order || a.shard - b.shard;
}

function checkName(name: string): void {
  if (!name) {
    throw new SessionGateError('SG_ERR_UNKNOWN_SUBSCRIBER', 'a close subscriber needs a non-empty name');
  }
}
