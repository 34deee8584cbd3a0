#!/usr/bin/env node
// `npm run build` (and `npm pack`, through prepack): compile src/ to dist/ — JavaScript, .d.ts
// and declaration maps — and copy the files the program reads from disk at run time: the admin
// page's static files and the Python runner of the sps-python plugin runtime. dist/ is made
// afresh, so a file removed from src/ is not shipped from an earlier build.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..') + '/';
/** Files under src/ that are not TypeScript and are read at run time (paths from src/). */
const ASSETS = ['admin/static', 'plugins/runtimes/sps_runner.py'];

rmSync(`${root}dist`, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const run = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });
if (run.status !== 0) process.exit(run.status ?? 1);
for (const asset of ASSETS) cpSync(`${root}src/${asset}`, `${root}dist/${asset}`, { recursive: true });
