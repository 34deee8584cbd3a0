#!/usr/bin/env node
// The `sessiongate` command.
//
// Installed from the package, it runs the compiled program in dist/. In a checkout — src/ is
// there, and the package ships no src/ — it runs the TypeScript sources through tsx, so
// development and the tests need no build step (a dist/ built in a checkout is for packing).
//
// `serve` (one process) and `quickstart` want V8 flags that Node takes only when a process
// starts. They are decided here from the arguments alone, before the program is loaded; when
// some are due, Node starts again with them and this process, which loaded nothing else, only
// passes signals on (launchFlags and relaunch in src/cli/relaunch.ts). Started with the flags
// on node's command line (docs/deployment.md), the command is the gateway itself.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const fromSources = existsSync(join(import.meta.dirname, '../src/cli/main.ts'));
if (fromSources) (await import('tsx/esm/api')).register();
const program = (name) =>
  pathToFileURL(join(import.meta.dirname, fromSources ? `../src/cli/${name}.ts` : `../dist/cli/${name}.js`))
    .href;

const args = process.argv.slice(2);
const { launchFlags, relaunch } = await import(program('relaunch'));
const flags = launchFlags(args, process.execArgv, process.env.NODE_OPTIONS);
if (flags.length > 0) {
  process.exitCode = await relaunch(flags, args);
} else {
  const { main } = await import(program('main'));
  process.exitCode = await main(args);
}
