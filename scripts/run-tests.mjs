#!/usr/bin/env node
// Node 20's test runner takes no globs: find test/**/*.test.ts (or the paths given) and run
// them all in one `node --test` with tsx, two files at a time (the machines have two cores).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(path) {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => (name === 'fixtures' ? [] : find(join(path, name))))
    .filter((p) => p.endsWith('.test.ts'));
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['test']).flatMap(find);
const args = [
  '--import',
  'tsx',
  '--test',
  `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`,
  // A test that hangs, or a file whose failed setup leaves a server listening, must end the
  // run red within minutes rather than hold CI until its limit.
  '--test-timeout=600000',
  '--test-force-exit',
  ...files,
];
const run = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(run.status ?? 1);
