import type { SessionId } from '../../core/ids.js';
import type { CloseReason, CloseRecord, SessionRecord } from '../../core/session-types.js';

/**
 * How a session sits in Redis: ONE string, its record as JSON, with the fields the scripts
 * need first and in this order — lastAccessAt, expiresAt, version (what a touch rewrites), then
 * idleTimeout, lifetimeDeadline, policyDeadline, state, clientIp — so a script reads them with
 * one anchored match (scripts.ts, FRONT) and never decodes or re-encodes the rest: Redis's
 * cjson would turn an empty array into `{}` and round numbers to 14 digits. One string is also
 * the smallest thing Redis can hold per session (a hash with a long field is a full hash table).
 */
export function encodeRecord(r: SessionRecord): string {
  return JSON.stringify({
    lastAccessAt: r.lastAccessAt,
    expiresAt: r.expiresAt,
    version: r.version,
    idleTimeout: r.idleTimeout,
    lifetimeDeadline: r.lifetimeDeadline,
    policyDeadline: r.policyDeadline,
    state: r.state,
    clientIp: r.clientIp,
    user: r.user,
    id: r.id,
    profile: r.profile,
    createdAt: r.createdAt,
    lifetime: r.lifetime,
    variables: r.variables,
    secure: r.secure,
    cookies: r.cookies,
    sessionCookie: r.sessionCookie,
  });
}

/** A record as stored (or as a script returned it). */
export function decodeRecord(json: string): SessionRecord {
  return JSON.parse(json) as SessionRecord;
}

/** `<shard>:<stream id>` — the opaque `seq` of a redis close record. */
export function seqOf(shard: number, streamId: string): string {
  return `${shard}:${streamId}`;
}

export function parseSeq(seq: string, shards: number): { shard: number; id: string } | null {
  const m = /^(\d+):(\d+-\d+)$/.exec(seq);
  if (!m) return null;
  const shard = Number(m[1]);
  return shard < shards ? { shard, id: m[2]! } : null;
}

/** The ordering clock part of a stream id `<o>-0`. */
export function orderOf(streamId: string): number {
  return Number(streamId.slice(0, streamId.indexOf('-')));
}

/** A close record from a stream entry's flat field list (id, r, at, s). */
export function decodeEntry(shard: number, streamId: string, flat: string[]): CloseRecord {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return {
    seq: seqOf(shard, streamId),
    sessionId: f.id as SessionId,
    reason: f.r as CloseReason,
    closedAt: Number(f.at),
    snapshot: decodeRecord(f.s!),
  };
}
