import { SessionGateError } from '../core/errors.js';
import type { SessionStore } from './contract.js';
import { parseRedisUrl, redact } from './redis/url.js';

/** What a store URL names, checked without opening anything. */
export type StoreTarget = { kind: 'memory' } | { kind: 'sqlite'; path: string } | { kind: 'redis' };

/**
 * Check a store URL the way `openStore` reads it, without connecting or touching a file: the
 * configuration check and the start of the gateway use this one reading. Throws
 * `SG_ERR_STORE_URL` naming the problem (never the password).
 *
 * @example
 * ```ts
 * parseStoreUrl('sqlite:./var/sessiongate.db'); // { kind: 'sqlite', path: './var/sessiongate.db' }
 * parseStoreUrl('redis://127.0.0.1:99999');     // throws SG_ERR_STORE_URL (port out of range)
 * ```
 */
export function parseStoreUrl(url: string): StoreTarget {
  if (url === 'memory' || url === 'memory:') return { kind: 'memory' };
  const sqlite = /^sqlite:(?:\/\/)?(.+)$/s.exec(url);
  if (sqlite?.[1]) {
    // A NUL or a line break cannot be part of a file name the operator meant.
    if (/[\0\r\n]/.test(sqlite[1]))
      throw new SessionGateError('SG_ERR_STORE_URL', 'sqlite store path holds a NUL or a line break');
    return { kind: 'sqlite', path: sqlite[1] };
  }
  if (/^rediss?(\+cluster)?:\/\//.test(url)) {
    const options = parseRedisUrl(url);
    for (const node of options.nodes) {
      if (node.host === '' || !Number.isInteger(node.port) || node.port < 1 || node.port > 65_535) {
        throw new SessionGateError(
          'SG_ERR_STORE_URL',
          `redis store URL ${JSON.stringify(redact(url))}: port ${node.port} of ${node.host || '(no host)'} is not 1 to 65535`,
        );
      }
    }
    return { kind: 'redis' };
  }
  throw new SessionGateError(
    'SG_ERR_STORE_URL',
    `unknown store ${JSON.stringify(url.replace(/:\/\/([^:@/]*):[^@/]*@/, '://$1:***@'))}: use memory, sqlite:PATH, redis://HOST:PORT or redis+cluster://HOST:PORT,HOST:PORT`,
  );
}

/**
 * Open a store from its URL: `memory`, `sqlite:PATH` (or `sqlite://PATH`),
 * `redis://[:password@]host:port[/db]`, `rediss://...` (TLS), `redis+cluster://host:port,host:port`
 * or `rediss+cluster://...`; redis options go in the query (`?prefix=sg&durability=replicated`,
 * see redis/url.ts).
 *
 * @example
 * ```ts
 * const store = await openStore('sqlite:./var/sessiongate.db');
 * const shared = await openStore('redis+cluster://10.0.0.1:7000,10.0.0.2:7000?durability=replicated');
 * ```
 */
export async function openStore(url: string): Promise<SessionStore> {
  const target = parseStoreUrl(url);
  // Each driver is loaded only when its scheme is asked for: a sqlite user never loads ioredis,
  // a redis user never loads better-sqlite3.
  if (target.kind === 'memory') {
    const { MemoryStore } = await import('./memory/store.js');
    return new MemoryStore();
  }
  if (target.kind === 'sqlite') {
    const { SqliteStore } = await import('./sqlite/store.js');
    return SqliteStore.open(target.path);
  }
  const { RedisStore } = await import('./redis/store.js');
  return RedisStore.open(url);
}
