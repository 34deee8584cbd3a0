import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SessionGateError } from '../core/errors.js';
import { keySlot, type RedisKeys } from './redis-keys.js';

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
   * (redis-near-cache.ts; default on). A change made by another process shows here when its
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

/** Either client. */
export type RedisClient = Redis | Cluster;

/**
 * A connected client with auto-pipelining on (every call made in one event-loop tick goes out
 * in one write per server) and the scripts defined. Requests fail after a few reconnection
 * attempts instead of queueing for long: a gateway answers "unavailable" rather than hang.
 */
export async function connectRedis(o: RedisStoreOptions): Promise<RedisClient> {
  const common: RedisOptions = {
    lazyConnect: true,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 3,
    connectTimeout: o.connectTimeoutMs,
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    ...(o.tls ? { tls: {} } : {}),
  };
  let client: RedisClient;
  if (o.cluster) {
    const clusterOptions: ClusterOptions = {
      lazyConnect: true,
      enableAutoPipelining: true,
      redisOptions: common,
      // Failover: re-read the slot map soon after a node drops, and retry while it moves.
      slotsRefreshInterval: 2000,
      retryDelayOnFailover: 200,
      retryDelayOnClusterDown: 200,
      retryDelayOnTryAgain: 100,
      maxRedirections: 16,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    };
    client = new Cluster(o.nodes, clusterOptions);
  } else {
    client = new Redis({
      ...common,
      host: o.nodes[0]!.host,
      port: o.nodes[0]!.port,
      db: o.db ?? 0,
      retryStrategy: (times) => Math.min(100 * times, 1000),
    });
  }
  // Without a listener ioredis prints every connection error; calls report them instead.
  client.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${o.connectTimeoutMs} ms`)),
          o.connectTimeoutMs,
        );
      }),
    ]);
    await client.ping();
  } catch (err) {
    client.disconnect();
    throw unavailable(o, err);
  } finally {
    clearTimeout(timer);
  }
  return client;
}

/** SG_ERR_STORE_UNAVAILABLE naming the server (never the password), one line. */
export function unavailable(o: RedisStoreOptions, err: unknown): SessionGateError {
  if (err instanceof SessionGateError) return err;
  let message = err instanceof Error ? err.message : String(err);
  if (o.password) message = message.split(o.password).join('***');
  message = message.split('\n')[0]!.slice(0, 300);
  const what = o.cluster ? 'redis cluster' : 'redis';
  return new SessionGateError('SG_ERR_STORE_UNAVAILABLE', `${what} at ${describeNodes(o)}: ${message}`, {
    cause: err,
  });
}

/**
 * The client connection that serves a key's slot: WAIT must go over the very connection that
 * wrote (it waits for that connection's last write to reach the replicas).
 */
export function connectionFor(client: RedisClient, slot: number): Redis {
  if (!(client instanceof Cluster)) return client;
  const nodeKey = client.slots[slot]?.[0];
  const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === nodeKey);
  if (!node) throw new Error(`no known master serves slot ${slot} yet`);
  return node;
}

/**
 * `durability: replicated`: WAIT for one replica on every master these keys live on, over the
 * connection that wrote them; no acknowledgement within `waitMs` fails the call with
 * SG_ERR_STORE_NOT_REPLICATED (the write itself stays on the master). A no-op for `async`.
 */
export async function waitForReplicas(
  client: RedisClient,
  o: RedisStoreOptions,
  keys: string[],
): Promise<void> {
  if (o.durability !== 'replicated' || keys.length === 0) return;
  const connections = new Set(keys.map((k) => connectionFor(client, keySlot(k))));
  await Promise.all(
    [...connections].map(async (c) => {
      const acked = Number(await c.call('WAIT', '1', String(o.waitMs)));
      if (acked < 1) {
        throw new SessionGateError(
          'SG_ERR_STORE_NOT_REPLICATED',
          `no replica of redis ${c.options.host}:${c.options.port} acknowledged the write within ${o.waitMs} ms`,
        );
      }
    }),
  );
}

/**
 * Checks made once at open: a standalone URL must not point at a cluster node; every gateway
 * on a prefix must use the same shard count (recorded at first open); and whether the data is
 * durable: `replicated`, or append-only files on every master. Returns that last answer.
 */
export async function inspectServer(
  client: RedisClient,
  o: RedisStoreOptions,
  keys: RedisKeys,
): Promise<boolean> {
  const cluster = client instanceof Cluster;
  if (!cluster && /cluster_enabled:1/.test(await client.info('cluster'))) {
    throw new SessionGateError(
      'SG_ERR_STORE_URL',
      `${describeNodes(o)} is a cluster node: use redis+cluster://`,
    );
  }
  await client.hsetnx(keys.meta(), 'shards', String(o.shards));
  const agreed = Number(await client.hget(keys.meta(), 'shards'));
  if (agreed !== o.shards) {
    throw new SessionGateError(
      'SG_ERR_CONFIG',
      `redis prefix ${JSON.stringify(o.prefix)} was created with shards=${agreed}, not ${o.shards}`,
    );
  }
  if (o.durability === 'replicated') return true;
  const masters = client instanceof Cluster ? client.nodes('master') : [client];
  const aof = await Promise.all(masters.map(async (m) => /aof_enabled:1/.test(await m.info('persistence'))));
  return aof.length > 0 && aof.every(Boolean);
}
