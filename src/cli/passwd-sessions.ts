import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { SessionGateError } from '../core/errors.js';
import type { CloseReason } from '../core/session-types.js';
import { SessionEngine } from '../session/engine.js';
import { Keyring } from '../session/keyring.js';
import { openStore } from '../store/open.js';
import { AdminClient } from './admin-client.js';
import { usage } from './args.js';
import { loadCliConfig } from './config-file.js';
import { DEFAULT_STORE, type Io } from './context.js';

/** The reason a password change closes the user's other sessions with (docs/sessions.md). */
export const PASSWORD_CHANGED: CloseReason = 'password_changed';

/**
 * Where `users passwd` ends the user's sessions: nowhere (`--keep-sessions`), a running
 * gateway's admin API (`--url`), or the store itself (sqlite file or redis), as a URL.
 */
export type SessionsTarget =
  { kind: 'keep' } | { kind: 'api'; api: AdminClient } | { kind: 'store'; url: string; shown: string };

export interface SessionsFlags {
  'keep-sessions'?: boolean | undefined;
  url?: string | undefined;
  'token-file'?: string | undefined;
  store?: string | undefined;
}

/**
 * Decide the target before anything changes, so a wrong flag or a memory store leaves the
 * password as it was. The store is `--store`, else the config file's `store`, else the default
 * sqlite file (paths of the command line against the working directory, of the file against
 * its folder). A memory store lives inside the gateway process: only `--url` reaches it.
 */
export function sessionsTarget(
  flags: SessionsFlags,
  configFile: string | undefined,
  io: Io,
  command: string,
): SessionsTarget {
  const keep = flags['keep-sessions'] ?? false;
  if (keep && (flags.url !== undefined || flags.store !== undefined)) {
    throw usage('--keep-sessions ends nothing: leave out --url and --store', command);
  }
  if (keep) return { kind: 'keep' };
  if (flags.url !== undefined) {
    if (flags.store !== undefined) throw usage('give --url URL or --store URL, not both', command);
    return { kind: 'api', api: AdminClient.from(flags.url, flags['token-file'], io, command) };
  }
  if (flags['token-file'] !== undefined) throw usage('--token-file goes with --url URL', command);
  const fromFile = configFile !== undefined ? loadCliConfig(configFile, io.cwd) : undefined;
  const [url, base, origin] =
    flags.store !== undefined
      ? [flags.store, io.cwd, '--store']
      : fromFile?.store !== undefined
        ? [fromFile.store, fromFile.dir, `${fromFile.file}: store`]
        : [DEFAULT_STORE, io.cwd, 'default store'];
  return storeTarget(url, base, origin, command);
}

function storeTarget(url: string, base: string, origin: string, command: string): SessionsTarget {
  if (url === 'memory' || url === 'memory:') {
    throw usage(
      `${origin} is memory: its sessions live in the running gateway; end them there with ` +
        '--url ADMIN_URL, or give --keep-sessions',
      command,
    );
  }
  const sqlite = /^sqlite:(?:\/\/)?(.+)$/.exec(url);
  if (sqlite?.[1] !== undefined) {
    const path = resolve(base, sqlite[1]);
    return { kind: 'store', url: `sqlite:${path}`, shown: `sqlite:${path}` };
  }
  if (/^rediss?(\+cluster)?:\/\//.test(url)) {
    return { kind: 'store', url, shown: url.replace(/:\/\/([^:@/]*):[^@/]*@/, '://$1:***@') };
  }
  throw usage(`${origin}: unknown store ${JSON.stringify(url.slice(0, 80))}`, command);
}

/**
 * Close every live session of `user` with reason password_changed (ASVS 3.3.3): through the
 * admin API, or in the store, whose close records the gateway's close pipeline then handles
 * (audit line, plugins' session_ended). A sqlite file that does not exist holds no session and
 * is not created. Returns how many were closed, or a note when nothing could hold one.
 */
export async function endSessions(
  target: Exclude<SessionsTarget, { kind: 'keep' }>,
  user: string,
): Promise<{ closed: number; note?: string }> {
  if (target.kind === 'api') {
    const path = `/api/v1/sessions?user=${encodeURIComponent(user)}&reason=${PASSWORD_CHANGED}`;
    return { closed: (await target.api.call<{ closed: number }>('DELETE', path)).closed };
  }
  const file = target.url.startsWith('sqlite:') ? target.url.slice('sqlite:'.length) : undefined;
  if (file !== undefined && file !== ':memory:' && !existsSync(file)) {
    return { closed: 0, note: `no store file ${file}` };
  }
  const store = await openStore(target.url).catch((err: unknown) => {
    if (err instanceof SessionGateError) throw err;
    throw new SessionGateError(
      'SG_ERR_STORE_UNAVAILABLE',
      `cannot open store ${target.shown}: ${(err as Error).message}`,
      { cause: err },
    );
  });
  try {
    // Closing decrypts nothing: the snapshot keeps secure values sealed.
    const engine = new SessionEngine({ store, keyring: Keyring.ephemeral() });
    try {
      return { closed: await engine.closeUser(user, PASSWORD_CHANGED) };
    } finally {
      await engine.stop();
    }
  } finally {
    await store.dispose();
  }
}
