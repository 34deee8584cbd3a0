import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SessionGateError } from '../../core/errors.js';
import { keySlot, type RedisKeys } from './keys.js';
import { describeNodes, type RedisStoreOptions } from './url.js';

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
