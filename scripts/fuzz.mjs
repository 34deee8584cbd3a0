#!/usr/bin/env node
// `npm run fuzz`: the project's seeded fuzz campaigns at full size (requests, configurations,
// plugin replies), one after the other so each has the machine to itself, then their figures.
// Every campaign is an ordinary test file named *-fuzz.test.ts that runs a short version in
// `npm test`; FUZZ_FULL=1 makes it run the full one and FUZZ_FIGURES_DIR is where it writes
// `<campaign>.json`. FUZZ_SEED changes the seed of all of them; arguments pick campaigns by name.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function find(path) {
  if (statSync(path).isFile()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => (name === 'fixtures' ? [] : find(join(path, name))));
}

const wanted = process.argv.slice(2);
const campaigns = find('test')
  .filter((p) => p.endsWith('-fuzz.test.ts'))
  .filter((p) => wanted.length === 0 || wanted.some((w) => p.includes(w)));
if (campaigns.length === 0) {
  process.stderr.write(`fuzz: no campaign matches ${wanted.join(', ')}\n`);
  process.exit(2);
}

const figuresDir = mkdtempSync(join(tmpdir(), 'sg-fuzz-'));
const env = { ...process.env, FUZZ_FULL: '1', FUZZ_FIGURES_DIR: figuresDir };
const results = [];
for (const file of campaigns) {
  process.stdout.write(`\n== ${file}\n`);
  const started = Date.now();
  const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=dot', file], {
    stdio: 'inherit',
    env,
  });
  results.push({ file, ok: run.status === 0, seconds: Math.round((Date.now() - started) / 1000) });
}

process.stdout.write('\n== figures\n');
for (const name of readdirSync(figuresDir).sort()) {
  const figures = JSON.parse(readFileSync(join(figuresDir, name), 'utf8'));
  process.stdout.write(`${name.replace(/\.json$/, '')}: ${JSON.stringify(figures, null, 2)}\n`);
}
rmSync(figuresDir, { recursive: true, force: true });
for (const r of results) process.stdout.write(`${r.ok ? 'pass' : 'FAIL'}  ${r.file}  (${r.seconds} s)\n`);
process.exit(results.every((r) => r.ok) ? 0 : 1);
