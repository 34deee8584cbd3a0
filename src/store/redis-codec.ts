import type { SessionId } from '../core/ids.js';
import type { CloseReason, CloseRecord, SessionRecord } from '../core/session-types.js';

/**
 * How a session sits in its Redis hash. The scripts need a few scalar fields (deadlines,
 * version, state, user, address) and must never re-encode the rest: Redis's cjson would turn an
 * empty array into `{}` and round numbers to 14 digits. So `d` is the JSON of every field the
 * scripts do not rewrite, kept as an opaque string, and the three fields a touch changes
 * (lastAccessAt, expiresAt, version) live beside it.
 */
export interface SessionFields {
  la: string;
  exp: string;
  v: string;
  idle: string;
  ld: string;
  pd: string;
  st: string;
  /** JSON of the user (`null` or a string), so null and '' stay distinct. */
  u: string;
  /** JSON of the client address, compared as-is by the list filter. */
  ip: string;
  d: string;
}

const n = (x: number | null): string => (x === null ? '' : String(x));

export function encodeRecord(r: SessionRecord): SessionFields {
  // An explicit literal: fixed key order, and nothing beyond the record's own fields.
  const rest = {
    id: r.id,
    state: r.state,
    user: r.user,
    clientIp: r.clientIp,
    profile: r.profile,
    createdAt: r.createdAt,
    idleTimeout: r.idleTimeout,
    lifetime: r.lifetime,
    lifetimeDeadline: r.lifetimeDeadline,
    policyDeadline: r.policyDeadline,
    variables: r.variables,
    secure: r.secure,
    cookies: r.cookies,
    sessionCookie: r.sessionCookie,
  };
  return {
    la: String(r.lastAccessAt),
    exp: n(r.expiresAt),
    v: String(r.version),
    idle: String(r.idleTimeout),
    ld: n(r.lifetimeDeadline),
    pd: n(r.policyDeadline),
    st: r.state,
    u: JSON.stringify(r.user),
    ip: JSON.stringify(r.clientIp),
    d: JSON.stringify(rest),
  };
}

/** The field values in the order the insert and put scripts take them (after their own args). */
export function fieldArgs(f: SessionFields): string[] {
  return [f.la, f.exp, f.v, f.idle, f.ld, f.pd, f.st, f.u, f.ip, f.d];
}

type Rest = Omit<SessionRecord, 'lastAccessAt' | 'expiresAt' | 'version'>;

/** A record from the hash fields (la, exp, v, d) the scripts return. */
export function decodeRecord(la: string, exp: string, v: string, d: string): SessionRecord {
  const r = JSON.parse(d) as Rest;
  // One literal in SessionRecord order: a compact object, as copyRecord makes.
  return {
    id: r.id,
    state: r.state,
    user: r.user,
    clientIp: r.clientIp,
    profile: r.profile,
    createdAt: r.createdAt,
    lastAccessAt: Number(la),
    idleTimeout: r.idleTimeout,
    lifetime: r.lifetime,
    lifetimeDeadline: r.lifetimeDeadline,
    policyDeadline: r.policyDeadline,
    expiresAt: exp === '' ? null : Number(exp),
    variables: r.variables,
    secure: r.secure,
    cookies: r.cookies,
    sessionCookie: r.sessionCookie,
    version: Number(v),
  };
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

/** A close record from a stream entry's flat field list (id, r, at, la, exp, v, d). */
export function decodeEntry(shard: number, streamId: string, flat: string[]): CloseRecord {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i]!] = flat[i + 1]!;
  return {
    seq: seqOf(shard, streamId),
    sessionId: f.id as SessionId,
    reason: f.r as CloseReason,
    closedAt: Number(f.at),
    snapshot: decodeRecord(f.la!, f.exp!, f.v!, f.d!),
  };
}
