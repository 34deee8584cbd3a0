// A start that fails at its last step (the port is taken) must close what it had opened: the
// store, the plugin host, the upstream pools and the demo application's server. Before, they
// stayed open — a process that retried its start leaked a server and a store handle each time.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startGateway } from '../../src/gateway/assemble.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import type { SessionStore } from '../../src/store/contract.js';
import { recordingLogger } from '../plugins/helpers.js';

/** Servers of this process that listen (process.getActiveResourcesInfo keeps closed ones). */
const servers = () =>
  (process as unknown as { _getActiveHandles(): unknown[] })
    ._getActiveHandles()
    .filter((h) => h instanceof Server && h.listening).length;

describe('a start that fails', () => {
  it('closes the store and the servers it had opened when the port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    const dir = mkdtempSync(join(tmpdir(), 'sg-failed-start-'));
    const loaded = parseConfig(
      [
        'store: memory',
        'keys: ./keyring.json',
        'admin: { enabled: false }',
        'routes:',
        '  - { match: { path: / }, upstream: demo }',
        '',
      ].join('\n'),
      'gw.yaml',
      dir,
    );
    const before = servers();
    let disposed = 0;
    const wrapStore = (store: SessionStore): SessionStore =>
      Object.assign(Object.create(store) as SessionStore, {
        dispose: async () => {
          disposed++;
          await store.dispose();
        },
      });
    try {
      await assert.rejects(
        startGateway(loaded, { logger: recordingLogger(), port, wrapStore }),
        /EADDRINUSE/,
      );
      assert.equal(disposed, 1, 'the store was disposed');
      assert.equal(servers(), before, 'no server left open (the demo application, the listener)');
    } finally {
      taken.close();
    }
  });
});
