import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance } from '../../src/store/conformance.js';
import { SqliteStore } from '../../src/store/sqlite.js';

runStoreConformance('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-sqlite-'));
  const path = join(dir, 'sessions.db');
  const h = {
    store: SqliteStore.open(path),
    reopen: async () => {
      await h.store.dispose();
      return SqliteStore.open(path);
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
  return h;
});
