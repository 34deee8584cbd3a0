import type { CloseRecord } from '../../core/session-types.js';
import type { ClaimedClose, ClaimOptions, ReleaseOptions } from '../contract.js';

interface Pending {
  consumer: string | null;
  /** Lease end while claimed; the retry time once released. */
  leaseUntil: number;
  attempts: number;
  redelivered: boolean;
}

interface Group {
  lastSeq: number;
  pending: Map<number, Pending>;
  failed: Map<number, { error: string; failedAt: number }>;
}

/**
 * The outbox of the memory store, with Redis-Streams-like consumer groups: one group per
 * subscriber, a last-delivered position, and a pending list of leased records.
 */
export class MemoryOutbox {
  private readonly records = new Map<number, CloseRecord>();
  private readonly groups = new Map<string, Group>();
  private seq = 0;

  append(record: Omit<CloseRecord, 'seq'>): CloseRecord {
    const seq = ++this.seq;
    const full: CloseRecord = { ...record, seq: String(seq) };
    this.records.set(seq, full);
    return full;
  }

  ensureGroup(name: string): void {
    if (!this.groups.has(name)) {
      const first = this.records.keys().next();
      const lastSeq = first.done ? this.seq : first.value - 1;
      this.groups.set(name, { lastSeq, pending: new Map(), failed: new Map() });
    }
  }

  claim(name: string, consumer: string, o: ClaimOptions): ClaimedClose[] {
    const g = this.group(name);
    const out: ClaimedClose[] = [];
    for (const [seq, p] of g.pending) {
      if (out.length >= o.limit) return out;
      if (p.leaseUntil > o.now) continue;
      const record = this.records.get(seq);
      if (!record) continue;
      if (p.consumer !== null) p.redelivered = true; // the lease ran out: its holder died
      p.consumer = consumer;
      p.leaseUntil = o.now + o.leaseMs;
      p.attempts += 1;
      out.push({ ...record, attempt: p.attempts, redelivered: p.redelivered });
    }
    while (out.length < o.limit && g.lastSeq < this.seq) {
      const seq = ++g.lastSeq;
      const record = this.records.get(seq);
      if (!record) continue;
      g.pending.set(seq, { consumer, leaseUntil: o.now + o.leaseMs, attempts: 1, redelivered: false });
      out.push({ ...record, attempt: 1, redelivered: false });
    }
    return out;
  }

  ack(name: string, ref: string): void {
    const seq = Number(ref);
    this.group(name).pending.delete(seq);
    this.trim(seq);
  }

  retry(name: string, ref: string, retryAt: number): void {
    const p = this.group(name).pending.get(Number(ref));
    if (p) {
      p.consumer = null;
      p.leaseUntil = retryAt;
    }
  }

  fail(name: string, ref: string, error: string, now: number): void {
    const g = this.group(name);
    const seq = Number(ref);
    if (g.pending.delete(seq)) g.failed.set(seq, { error, failedAt: now });
  }

  renew(name: string, consumer: string, refs: string[], leaseUntil: number): string[] {
    const g = this.group(name);
    return refs.filter((ref) => {
      const p = g.pending.get(Number(ref));
      if (p?.consumer !== consumer) return false;
      p.leaseUntil = leaseUntil;
      return true;
    });
  }

  release(name: string, consumer: string, refs: string[], o: ReleaseOptions): void {
    const g = this.group(name);
    for (const ref of refs) {
      const p = g.pending.get(Number(ref));
      if (p?.consumer !== consumer) continue;
      p.consumer = null;
      p.leaseUntil = o.now;
      if (o.interrupted) p.redelivered = true;
      else p.attempts = Math.max(0, p.attempts - 1);
    }
  }

  /** Per subscriber: the close time of its oldest record leased, waiting, or not yet delivered. */
  oldestClosedAt(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, g] of this.groups) {
      let oldest = g.lastSeq + 1 <= this.seq ? this.firstRecordAfter(g.lastSeq) : undefined;
      for (const seq of g.pending.keys()) if (oldest === undefined || seq < oldest) oldest = seq;
      const record = oldest === undefined ? undefined : this.records.get(oldest);
      if (record) out[name] = record.closedAt;
    }
    return out;
  }

  pendingCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, g] of this.groups) out[name] = g.pending.size + (this.seq - g.lastSeq);
    return out;
  }

  failedCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, g] of this.groups) out[name] = g.failed.size;
    return out;
  }

  private firstRecordAfter(seq: number): number | undefined {
    for (let next = seq + 1; next <= this.seq; next++) if (this.records.has(next)) return next;
    return undefined;
  }

  private group(name: string): Group {
    this.ensureGroup(name);
    return this.groups.get(name)!;
  }

  /** Drop a record once every subscriber is past it and none holds it. */
  private trim(seq: number): void {
    for (const g of this.groups.values()) {
      if (g.lastSeq < seq || g.pending.has(seq) || g.failed.has(seq)) return;
    }
    this.records.delete(seq);
  }
}
