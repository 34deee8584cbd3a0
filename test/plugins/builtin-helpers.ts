import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginHost } from '../../src/plugins/host.js';
import { loadPlugins, pluginSpecSchema } from '../../src/plugins/load.js';
import { SessionEngine } from '../../src/session/engine.js';
import { Keyring } from '../../src/session/keyring.js';
import { MemoryStore } from '../../src/store/memory/store.js';
import { recordingLogger } from './helpers.js';

export function tempDir(prefix = 'sg-builtin-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * A real engine (memory store) and a started PluginHost with built-in plugins built through
 * the config schema and loadPlugins, as the gateway does.
 */
export async function builtinHost(
  specs: { name: string; type: string; config: Record<string, unknown>; timeout_ms?: number }[],
  options: { baseDir: string; keyring?: Keyring },
) {
  const keyring = options.keyring ?? Keyring.ephemeral();
  const logger = recordingLogger();
  const engine = new SessionEngine({ store: new MemoryStore(), keyring, logger });
  const parsed = specs.map((s) => pluginSpecSchema.parse({ runtime: 'builtin', ...s }));
  const hosted = await loadPlugins(parsed, { baseDir: options.baseDir, keyring, logger });
  const host = new PluginHost(engine, hosted, logger);
  await host.start();
  return {
    engine,
    host,
    keyring,
    logger,
    /** A new in-progress session's id. */
    session: async () => (await engine.create()).id,
    /** Close a session and run the close pipeline (session_ended) now. */
    end: async (id: string) => {
      await engine.close(id, 'logout');
      await engine.dispatch();
    },
    stop: async () => {
      await engine.stop();
      await host.close();
    },
  };
}
