import { SessionGateError } from '../core/errors.js';
import type { SessionStore } from './contract.js';
import { MemoryStore } from './memory.js';
import { RedisStore } from './redis.js';
import { SqliteStore } from './sqlite.js';

/**
 * Open a store from its URL: `memory`, `sqlite:PATH` (or `sqlite://PATH`),
 * `redis://[:password@]host:port[/db]`, `rediss://...` (TLS), `redis+cluster://host:port,host:port`
 * or `rediss+cluster://...`; redis options go in the query (`?prefix=sg&durability=replicated`,
 * see redis-connect.ts).
 *
 * @example
 * ```ts
 * const store = await openStore('sqlite:./var/sessiongate.db');
 * const shared = await openStore('redis+cluster://10.0.0.1:7000,10.0.0.2:7000?durability=replicated');
 * ```
 */
export async function openStore(url: string): Promise<SessionStore> {
  if (url === 'memory' || url === 'memory:') return new MemoryStore();
  const sqlite = /^sqlite:(?:\/\/)?(.+)$/.exec(url);
  if (sqlite?.[1]) return SqliteStore.open(sqlite[1]);
  if (/^rediss?(\+cluster)?:\/\//.test(url)) return RedisStore.open(url);
  throw new SessionGateError(
    'SG_ERR_STORE_URL',
    `unknown store ${JSON.stringify(url.replace(/:\/\/([^:@/]*):[^@/]*@/, '://$1:***@'))}: use memory, sqlite:PATH, redis://HOST:PORT or redis+cluster://HOST:PORT,HOST:PORT`,
  );
}
