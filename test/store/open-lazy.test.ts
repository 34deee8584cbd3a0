import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';

const openTs = resolve(dirname(new URL(import.meta.url).pathname), '../../src/store/open.ts');

/**
 * Run in a fresh `node --import tsx`: import open.ts, then after each step note whether ioredis
 * and better-sqlite3 were loaded. Both are CommonJS packages, so once loaded (even through an ESM
 * import) their files are in the CommonJS module cache, which the child reads.
 */
const CHILD = `
import { createRequire } from 'node:module';
const cache = createRequire(import.meta.url).cache;
const loaded = () => {
  const files = Object.keys(cache);
  return {
    ioredis: files.some((f) => f.includes('/node_modules/ioredis/')),
    sqlite: files.some((f) => f.includes('/node_modules/better-sqlite3/')),
  };
};
const [openTs, dbPath] = process.argv.slice(1);
const { openStore, parseStoreUrl } = await import(openTs);
const steps = { imported: loaded() };
parseStoreUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7000?durability=replicated');
steps.parsedRedisUrl = loaded();
await (await openStore('memory')).dispose();
steps.memory = loaded();
await (await openStore('sqlite:' + dbPath)).dispose();
steps.sqlite = loaded();
await import(openTs.replace(/open\\.ts$/, 'redis/store.ts'));
steps.redisDriver = loaded();
console.log(JSON.stringify(steps));
`;

describe('openStore loads only the driver a URL names', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sg-open-lazy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('memory and sqlite stores open without loading ioredis; memory without better-sqlite3', () => {
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', CHILD, openTs, join(dir, 'sessions.db')],
      { encoding: 'utf8', timeout: 60_000 },
    );
    const steps = JSON.parse(out.trim().split('\n').at(-1)!) as Record<
      string,
      { ioredis: boolean; sqlite: boolean }
    >;
    assert.deepEqual(steps, {
      imported: { ioredis: false, sqlite: false },
      parsedRedisUrl: { ioredis: false, sqlite: false },
      memory: { ioredis: false, sqlite: false },
      sqlite: { ioredis: false, sqlite: true },
      // The check can see a load: importing the redis driver does load ioredis.
      redisDriver: { ioredis: true, sqlite: true },
    });
  });
});
