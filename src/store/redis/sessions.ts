import type { SessionId } from '../../core/ids.js';
import type { CloseReason, CloseRecord, SessionRecord } from '../../core/session-types.js';
import type { ValidateOutcome } from '../contract.js';
import { decodeRecord, encodeRecord, seqOf } from './codec.js';
import { ValidateBatcher } from './batch.js';
import { waitForReplicas, type RedisClient } from './connect.js';
import type { RedisStoreOptions } from './url.js';
import { RedisIndexes, type SessionReader } from './indexes.js';
import type { RedisKeys } from './keys.js';
import type { NearCache } from './near-cache.js';
import type { ScriptRunner } from './scripts.js';
import { RedisTags } from './tags.js';

const MISSING: ValidateOutcome = Object.freeze({ status: 'missing' });
const T = 't'.charCodeAt(0);
const TOUCHED_SAME = 'T'.charCodeAt(0);
/** Sessions whose last decoded record validate() keeps: about 1–2 kB of heap each. */
const RECENT_MAX = 10_000;

/** A touch is written behind its answer only if the session has at least this long left, ms. */
const LAZY_MARGIN_MS = 1000;

/** The last record validate() decoded for a session. */
interface Held {
  /** "version:byte length", what the scripts compare with the stored string. */
  tag: string;
  outcome: ValidateOutcome & { status: 'valid' };
  /** May answer without Redis (near cache): admitted in this epoch, read at `readAt`. */
  near: boolean;
  epoch: number;
  readAt: number;
  /** A touch written behind an answer (lazyTouch) is on its way. */
  touching?: boolean;
}

/** What the compare-and-set write of a whole record found. */
export type PutOutcome = 'written' | 'missing' | 'expired' | { conflict: number };

/**
 * One session's scripts (scripts.ts), each a single atomic step on the session's shard,
 * plus what has to follow them outside the slot: tidying the user and address indexes after a
 * close, and the WAIT of `durability: replicated`. The store composes these into contract calls.
 */
export class RedisSessions implements SessionReader {
  readonly indexes: RedisIndexes;
  readonly tags: RedisTags;
  private readonly batcher: ValidateBatcher | undefined;
  /** The records validate() decoded last, by session (see validate). */
  private readonly recent = new Map<SessionId, Held>();
  /** Ordering clock of close records (µs, strictly increasing in this process). */
  private lastOrder = 0;

  constructor(
    readonly client: RedisClient,
    private readonly scripts: ScriptRunner,
    readonly keys: RedisKeys,
    private readonly options: RedisStoreOptions,
    /** After any close: tells idle claimers (of every process) to look again. */
    private readonly onClosed: () => Promise<unknown>,
    /** Answers from held records while Redis announces no change (absent: always ask). */
    private readonly near?: NearCache,
  ) {
    this.tags = new RedisTags(client, scripts, keys, this);
    this.indexes = new RedisIndexes(client, keys, this, this.tags);
    this.batcher = options.batch ? new ValidateBatcher(client, scripts) : undefined;
    if (near) near.onInvalidate = (id) => this.recent.delete(id);
  }

  /** The record as stored (one HMGET), or null. */
  async get(id: SessionId): Promise<SessionRecord | null> {
    const json = await this.client.get(this.keys.session(id));
    return json === null ? null : decodeRecord(json);
  }

  /** The record if live at `now`, closing it first if its deadline passed; never touches it. */
  async probe(id: SessionId, now: number): Promise<SessionRecord | null> {
    const out = await this.validate(id, now, Infinity);
    return out.status === 'valid' ? out.record : null;
  }

  /**
   * One script; `.then` rather than `async` keeps the hot path to a single extra promise.
   * The script is told which version of the record this process last decoded; when Redis
   * still holds exactly that (same version and byte length) and writes nothing, it answers
   * 's' instead of the record: no record on the wire, no JSON.parse. Redis decides, on every
   * call, so this alone is never stale.
   *
   * With the near cache, a held record answers without Redis when it is usable (see NearCache)
   * and the script would give the same answer: not past its deadline, no touch due. This is
   * the same test the script makes, on the same record. With `lazyTouch` a usable record whose
   * touch is due answers too, and the touch is sent behind the answer (the request does not
   * wait for Redis; the idle deadline still moves).
   */
  validate(
    id: SessionId,
    now: number,
    touchResolutionMs: number,
    lazyTouch = false,
  ): Promise<ValidateOutcome> {
    const answer = this.heldAnswer(id, now, touchResolutionMs, lazyTouch);
    return answer ? Promise.resolve(answer) : this.ask(id, now, touchResolutionMs);
  }

  /** What the near cache can answer on its own (see validate), or undefined: ask Redis. */
  heldAnswer(
    id: SessionId,
    now: number,
    touchResolutionMs: number,
    lazyTouch: boolean,
  ): ValidateOutcome | undefined {
    const held = this.recent.get(id);
    if (!held?.near || !this.near?.usable(held.epoch, held.readAt, now)) return undefined;
    const r = held.outcome.record;
    if (r.expiresAt !== null && r.expiresAt <= now) return undefined;
    if (now - r.lastAccessAt < touchResolutionMs) return held.outcome;
    // A touch written behind may wait (batch.ts): not when the deadline is that close.
    if (!lazyTouch || (r.expiresAt !== null && r.expiresAt - now < LAZY_MARGIN_MS)) return undefined;
    // Answer now; the touch goes to Redis behind the answer, one at a time per session.
    if (!held.touching) {
      held.touching = true;
      this.ask(id, now, touchResolutionMs, held, true).catch(() => (held.touching = false));
    }
    return held.outcome;
  }

  /**
   * The script (alone or in a batch); `held` is what this process holds of the session;
   * `behind`: a touch nobody waits for (it may wait a little to share a call).
   */
  ask(
    id: SessionId,
    now: number,
    touchResolutionMs: number,
    held: Held | undefined = this.recent.get(id),
    behind = false,
  ): Promise<ValidateOutcome> {
    const near = this.near;
    const sent = near ? near.seq : 0;
    const res = touchResolutionMs === Infinity ? '1e999' : String(touchResolutionMs);
    const key = this.keys.session(id);
    const order = this.order(now);
    const known = held?.tag ?? '';
    const reply = this.batcher
      ? this.batcher.validate(key, String(now), res, order, known, behind)
      : this.scripts.run('sgValidate', key, String(now), res, order, known);
    return reply.then((reply) => {
      // 's' is only ever the answer to a `known` tag, so `held` is there.
      if (reply === 's' && held) {
        if (this.recent.get(id) === held) this.admit(id, held, sent, now);
        return held.outcome;
      }
      if (reply === 0) {
        this.recent.delete(id);
        return MISSING;
      }
      if (typeof reply === 'string' && reply.charCodeAt(0) === TOUCHED_SAME && held) {
        const touched = touchedCopy(held.outcome.record, reply, now);
        const valid = Object.freeze({ status: 'valid', record: touched.record } as const);
        this.remember(id, touched.tag, valid, sent, now);
        return this.replicate([this.keys.session(id)]).then(() => valid);
      }
      if (typeof reply === 'string') {
        // 'v' or 't' (a touch was written) + the record as JSON, assembled by the script.
        const json = reply.slice(1);
        const record = Object.freeze(decodeRecord(json));
        const valid = Object.freeze({ status: 'valid', record } as const);
        this.remember(id, `${record.version}:${Buffer.byteLength(json)}`, valid, sent, now);
        return reply.charCodeAt(0) === T ? this.replicate([this.keys.session(id)]).then(() => valid) : valid;
      }
      this.recent.delete(id);
      const r = reply as [number, CloseReason, string];
      return this.afterExpiredClose(id, r).then((): ValidateOutcome => ({ status: 'expired', reason: r[1] }));
    });
  }

  /** Keeps the last decoded record of a session; the oldest entries go first past the bound. */
  private remember(id: SessionId, tag: string, outcome: Held['outcome'], sent: number, now: number): void {
    this.recent.delete(id);
    if (this.recent.size >= RECENT_MAX) {
      const oldest = this.recent.keys().next();
      if (!oldest.done) this.recent.delete(oldest.value);
    }
    const held: Held = { tag, outcome, near: false, epoch: 0, readAt: now };
    this.admit(id, held, sent, now);
    this.recent.set(id, held);
  }

  /** Redis just vouched for `held` (read at `sent`): may it answer on its own from now on? */
  private admit(id: SessionId, held: Held, sent: number, now: number): void {
    const near = this.near;
    held.near = near !== undefined && near.admit(id, sent);
    if (near) held.epoch = near.epoch;
    held.readAt = now;
  }

  /**
   * This process changed these sessions: forget what it holds, and keep a validation that was
   * sent before the change and answers after it from being held (the script's reply and the
   * published message may arrive in either order). Called when the change is made and again
   * when Redis confirmed it.
   */
  changed(ids: readonly SessionId[]): void {
    for (const id of ids) {
      this.recent.delete(id);
      this.near?.invalidate(id, false);
    }
  }

  /** Send the validations and touches still waiting for their batch. */
  drain(): void {
    this.batcher?.drain();
  }

  /** Insert a new record; false when the id is taken. */
  async insert(record: SessionRecord): Promise<boolean> {
    return (await this.script(record.id, 'sgInsert', [encodeRecord(record)])) === 1;
  }

  /** Write `next` over the session if it is still at `version` and live at `now` (else closes it). */
  async put(next: SessionRecord, version: number, now: number): Promise<PutOutcome> {
    this.changed([next.id]);
    const args = [String(now), String(version), this.order(now), encodeRecord(next)];
    const r = (await this.script(next.id, 'sgPut', args)) as unknown[];
    this.changed([next.id]);
    if (r[0] === 3) return 'written';
    if (r[0] === 2) return { conflict: Number(r[1]) };
    if (r[0] === 1) {
      await this.afterExpiredClose(next.id, r);
      return 'expired';
    }
    return 'missing';
  }

  /** Delete WITHOUT a close record if still at `version`: 'dropped' | 'missing' | 'changed'. */
  async drop(id: SessionId, version: number): Promise<'dropped' | 'missing' | 'changed'> {
    this.changed([id]);
    const r = await this.script(id, 'sgDrop', [String(version)]);
    this.changed([id]);
    return r === 1 ? 'dropped' : r === 0 ? 'missing' : 'changed';
  }

  /** Delete + append the close record, in one script; then drop its index entries. */
  async close(id: SessionId, reason: CloseReason, now: number): Promise<CloseRecord | null> {
    this.changed([id]);
    const r = (await this.script(id, 'sgClose', [reason, String(now), this.order(now)])) as string[] | null;
    this.changed([id]);
    if (!r) return null;
    const [sid, why, json] = r as [string, CloseReason, string];
    const record: CloseRecord = {
      seq: seqOf(this.keys.shardOf(id), sid),
      sessionId: id,
      reason: why,
      closedAt: now,
      snapshot: decodeRecord(json),
    };
    await Promise.all([this.indexes.forget([record.snapshot]), this.onClosed()]);
    return record;
  }

  /** The next value(s) of the ordering clock: µs from `now`, never repeating in this process. */
  order(now: number, n = 1): string {
    const next = Math.max(Math.floor(now * 1000), this.lastOrder + 1);
    this.lastOrder = next + n - 1;
    return String(next);
  }

  replicate(keys: string[]): Promise<void> {
    return waitForReplicas(this.client, this.options, keys);
  }

  /** A script answered {1, reason, record}: the session closed; tidy its index entries. */
  private async afterExpiredClose(id: SessionId, r: unknown[]): Promise<void> {
    const { user, clientIp } = decodeRecord(String(r[2]));
    await Promise.all([this.indexes.forget([{ id, user, clientIp }]), this.onClosed()]);
    await this.replicate([this.keys.session(id)]);
  }

  /** Run a session script: its one key is the session's key (base and id are read from it). */
  private script(
    id: SessionId,
    name: 'sgInsert' | 'sgPut' | 'sgDrop' | 'sgClose',
    args: (string | number)[],
  ): Promise<unknown> {
    return this.scripts.run(name, this.keys.session(id), ...args);
  }
}

/**
 * The held record after the touch a 'T<expiresAt>:<byte length>' answer reports: the script
 * wrote lastAccessAt = now, the new deadline and version + 1 and left the rest as it was.
 */
function touchedCopy(
  prev: SessionRecord,
  reply: string,
  now: number,
): { record: SessionRecord; tag: string } {
  const colon = reply.indexOf(':');
  const exp = reply.slice(1, colon);
  const version = prev.version + 1;
  const record = Object.freeze({
    ...prev,
    lastAccessAt: now,
    expiresAt: exp === 'null' ? null : Number(exp),
    version,
  });
  return { record, tag: `${version}:${reply.slice(colon + 1)}` };
}
