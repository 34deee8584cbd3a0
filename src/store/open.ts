import { SessionGateError } from '../core/errors.js';
import type { SessionStore } from './contract.js';
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite.js';

/**
 * Open a store from its URL: `memory`, `sqlite:PATH` (or `sqlite://PATH`).
 *
 * @example
 * ```ts
 * const store = await openStore('sqlite:./var/sessiongate.db');
 * ```
 */
export async function openStore(url: string): Promise<SessionStore> {
  if (url === 'memory' || url === 'memory:') return new MemoryStore();
  const sqlite = /^sqlite:(?:\/\/)?(.+)$/.exec(url);
  if (sqlite?.[1]) return SqliteStore.open(sqlite[1]);
  throw new SessionGateError(
    'SG_ERR_STORE_URL',
    `unknown store ${JSON.stringify(url)}: use memory or sqlite:PATH (redis comes with the Redis backend)`,
  );
}
