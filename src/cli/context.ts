import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isSessionGateError, SessionGateError } from '../core/errors.js';
import { SessionEngine } from '../session/engine.js';
import { Keyring } from '../session/keyring.js';
import type { AccessProfile } from '../session/profile.js';
import type { SessionStore } from '../store/contract.js';
import { openStore, parseStoreUrl as checkStoreUrl } from '../store/open.js';
import { relaunch } from './relaunch.js';

/** Where a command writes and what it runs in; tests pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** All of standard input as text (`--password-stdin`); absent = no standard input. */
  readStdin?(): Promise<string>;
  /**
   * Run this program again with extra Node flags and `args`, and wait for its exit code
   * (relaunch.ts); absent = flags cannot be added (commands then run in this process).
   */
  relaunch?(nodeFlags: readonly string[], args: readonly string[]): Promise<number>;
}

let stdoutGuarded = false;

export function processIo(): Io {
  // `sessiongate session list | head -1`: the reader left; stop quietly instead of crashing.
  // Output is written after the store was closed, so nothing is left half done.
  if (!stdoutGuarded) {
    stdoutGuarded = true;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') process.stderr.write(`sessiongate: cannot write output: ${err.message}\n`);
      process.exitCode = err.code === 'EPIPE' ? 0 : 1;
    });
  }
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    env: process.env,
    cwd: process.cwd(),
    relaunch,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/** The global flags as parsed (`configFile` is `--config FILE` or `--config-file FILE`). */
export interface GlobalFlags {
  store?: string | undefined;
  configFile?: string | undefined;
  keyFile?: string | undefined;
}

export const DEFAULT_STORE = 'sqlite:./var/sessiongate.db';
export const DEFAULT_KEY_FILE = './var/keyring.json';

/** A store URL with its sqlite path made absolute, `memory`, or a redis URL as given. */
export type StoreTarget =
  { kind: 'memory' } | { kind: 'sqlite'; path: string } | { kind: 'redis'; url: string };

export interface Settings {
  store: StoreTarget;
  /** Absolute key ring path; undefined = an ephemeral key ring (memory store, no key file given). */
  keyFile: string | undefined;
  profiles: AccessProfile[];
}

/**
 * Apply the precedence rules: `--store`, else the config's `store`, else the default sqlite
 * file; `--key-file`, else the config's `keys`, else `./var/keyring.json`. Paths from the
 * command line resolve against the working directory, paths from the file against its folder.
 */
export async function resolveSettings(flags: GlobalFlags, cwd: string): Promise<Settings> {
  // yaml and zod load only when a config file is given (each command is a short process).
  const config =
    flags.configFile !== undefined
      ? (await import('./config-file.js')).loadCliConfig(flags.configFile, cwd)
      : undefined;
  let store: StoreTarget;
  if (flags.store !== undefined) store = parseStoreUrl(flags.store, cwd, '--store');
  else if (config?.store !== undefined)
    store = parseStoreUrl(config.store, config.dir, `${config.file}: store`);
  else store = parseStoreUrl(DEFAULT_STORE, cwd, 'default store');
  let keyFile: string | undefined;
  if (flags.keyFile !== undefined) keyFile = resolve(cwd, flags.keyFile);
  else if (config?.keys !== undefined) keyFile = config.keys;
  else keyFile = store.kind === 'memory' ? undefined : resolve(cwd, DEFAULT_KEY_FILE);
  return { store, keyFile, profiles: config?.profiles ?? [] };
}

/**
 * Read a store URL as the gateway does (memory, sqlite:PATH, redis://, rediss://, and their
 * +cluster forms); a sqlite path is made absolute against `base`. Errors name `origin`.
 *
 * @example
 * ```ts
 * parseStoreUrl('sqlite:var/s.db', '/srv/gw', '--store'); // { kind: 'sqlite', path: '/srv/gw/var/s.db' }
 * parseStoreUrl('redis://127.0.0.1:6379', '/srv/gw', '--store'); // { kind: 'redis', url: 'redis://127.0.0.1:6379' }
 * ```
 */
export function parseStoreUrl(url: string, base: string, origin: string): StoreTarget {
  let target;
  try {
    target = checkStoreUrl(url);
  } catch (err) {
    if (!isSessionGateError(err, 'SG_ERR_STORE_URL')) throw err;
    // A mistyped --store is a usage error (exit 2); a wrong config file is the file's error.
    throw new SessionGateError(
      origin === '--store' ? 'SG_ERR_USAGE' : 'SG_ERR_STORE_URL',
      `${origin}: ${err.message}`,
    );
  }
  if (target.kind === 'memory') return target;
  if (target.kind === 'redis') return { kind: 'redis', url };
  const path = target.path === ':memory:' ? target.path : resolve(base, target.path);
  return { kind: 'sqlite', path };
}

/**
 * Open the store, the key ring and an engine, run `work`, then stop the engine and dispose of
 * the store whatever happened, so the process can exit promptly.
 */
export async function withEngine<T>(
  flags: GlobalFlags,
  io: Io,
  work: (engine: SessionEngine) => Promise<T>,
): Promise<T> {
  const settings = await resolveSettings(flags, io.cwd);
  const keyring =
    settings.keyFile !== undefined ? Keyring.loadOrCreate(settings.keyFile) : Keyring.ephemeral();
  const store = await open(settings.store);
  try {
    const engine = new SessionEngine({ store, keyring, profiles: settings.profiles });
    try {
      return await work(engine);
    } finally {
      await engine.stop();
    }
  } finally {
    await store.dispose();
  }
}

async function open(target: StoreTarget): Promise<SessionStore> {
  if (target.kind === 'memory') return openStore('memory');
  // The redis store names the server (never the password) in its own SG_ERR_STORE_UNAVAILABLE.
  if (target.kind === 'redis') return openStore(target.url);
  try {
    if (target.path !== ':memory:') mkdirSync(dirname(target.path), { recursive: true });
    return await openStore(`sqlite:${target.path}`);
  } catch (err) {
    if (isSessionGateError(err)) throw err;
    throw new SessionGateError(
      'SG_ERR_STORE_UNAVAILABLE',
      `cannot open store sqlite:${target.path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
