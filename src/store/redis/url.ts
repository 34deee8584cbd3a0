import { SessionGateError } from '../../core/errors.js';

export type RedisDurability = 'async' | 'replicated';

/** Everything a redis store URL says; see `parseRedisUrl`. */
export interface RedisStoreOptions {
  /** host:port pairs: one for a single server, any number of seed nodes for a cluster. */
  nodes: { host: string; port: number }[];
  cluster: boolean;
  tls: boolean;
  username?: string;
  password?: string;
  db?: number;
  /** Key prefix (default `sg`); gateways sharing a prefix share sessions. */
  prefix: string;
  /** Shard count (default 256); fixed for the life of a prefix. */
  shards: number;
  /** `replicated`: every write waits for one replica (WAIT 1) and fails if none acknowledged. */
  durability: RedisDurability;
  /** How long `replicated` waits for a replica, ms (default 1000). */
  waitMs: number;
  /** How long opening the store may take, ms (default 5000). */
  connectTimeoutMs: number;
  /** Send the validations of one event-loop turn to one server as one script call (default on). */
  batch: boolean;
  /**
   * Keep the records validate() read and answer from them while Redis announces no change
   * (near-cache.ts; default on). A change made by another process shows here when its
   * message arrives — normally well under a millisecond; at most `nearCacheMs` if the
   * subscription stalls unnoticed.
   */
  nearCache: boolean;
  /**
   * How long a held record may answer without Redis being asked again, ms (default 2000). Above
   * the engine's touch resolution (1 s), so that the touch, not this bound, decides when a busy
   * session goes back to Redis: one call per session per second.
   */
  nearCacheMs: number;
}

const URL_RE = /^(rediss?)(\+cluster)?:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/(\d*))?(?:\?([^#]*))?$/;

/**
 * `redis://[[user]:password@]host:port[/db]`, `rediss://` (TLS), `redis+cluster://h:p,h:p`
 * and `rediss+cluster://`, with options as query parameters:
 * `?prefix=sg&shards=256&durability=async|replicated&waitMs=1000&connectTimeoutMs=5000&batch=1`
 * `&nearCache=1&nearCacheMs=2000`.
 *
 * @example
 * ```ts
 * parseRedisUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7000?durability=replicated');
 * ```
 */
export function parseRedisUrl(url: string): RedisStoreOptions {
  const m = URL_RE.exec(url);
  const bad = (why: string) =>
    new SessionGateError('SG_ERR_STORE_URL', `redis store URL ${JSON.stringify(redact(url))}: ${why}`);
  if (!m) throw bad('expected redis://host:port[/db] or redis+cluster://host:port,host:port');
  const [, scheme, cluster, user, password, hosts, db, query] = m;
  const nodes = hosts!.split(',').map((hp) => {
    const at = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hp.trim());
    if (!at) throw bad(`cannot read host:port ${JSON.stringify(hp)}`);
    return { host: at[1]!.replace(/^\[|\]$/g, ''), port: at[2] ? Number(at[2]) : 6379 };
  });
  if (!cluster && nodes.length !== 1) throw bad('several hosts need redis+cluster://');
  if (cluster && db) throw bad('a cluster has only database 0');
  const opts: RedisStoreOptions = {
    nodes,
    cluster: Boolean(cluster),
    tls: scheme === 'rediss',
    prefix: 'sg',
    shards: 256,
    durability: 'async',
    waitMs: 1000,
    connectTimeoutMs: 5000,
    batch: true,
    nearCache: true,
    nearCacheMs: 2000,
  };
  if (user) opts.username = decodeURIComponent(user);
  if (password !== undefined && password !== '') opts.password = decodeURIComponent(password);
  if (db) opts.db = Number(db);
  for (const [key, value] of new URLSearchParams(query ?? '')) {
    if (key === 'prefix') opts.prefix = value;
    else if (key === 'batch' || key === 'nearCache') {
      if (value !== '0' && value !== '1') throw bad(`${key} is 0 or 1`);
      opts[key] = value === '1';
    } else if (key === 'durability') {
      if (value !== 'async' && value !== 'replicated') throw bad('durability is async or replicated');
      opts.durability = value;
    } else if (key === 'shards' || key === 'waitMs' || key === 'connectTimeoutMs' || key === 'nearCacheMs') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) throw bad(`${key} must be a positive whole number`);
      opts[key] = n;
    } else
      throw bad(
        `unknown option ${JSON.stringify(key)} (prefix, shards, durability, waitMs, connectTimeoutMs, batch, nearCache, nearCacheMs)`,
      );
  }
  return opts;
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/^([^:]+:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** "host:port" or "host:port,host:port" — how messages name the server. */
export function describeNodes(o: RedisStoreOptions): string {
  return o.nodes.map((n) => `${n.host}:${n.port}`).join(',');
}
