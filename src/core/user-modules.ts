import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { SessionGateError } from './errors.js';
import type { UserModuleHooksData } from './user-module-hooks.js';

/**
 * This module runs from the TypeScript sources (a checkout, where the `sessiongate` command
 * runs under tsx) rather than from the compiled `dist/`. Then TypeScript loads already, and
 * 'sessiongate' means `src/`.
 */
const FROM_SOURCES = import.meta.url.endsWith('.ts');
const TYPESCRIPT = /\.[cm]?ts$/;

let hooksRegistered = false;
let typescriptLoader: Promise<void> | undefined;

/**
 * Import a rule or plugin file of the operator (an absolute path), as `serve` and
 * `check-config` both do. The file may `import { defineRules, definePlugin } from 'sessiongate'`
 * and get this running gateway's own copy, wherever it is. A TypeScript file loads without a
 * build step: tsx is loaded for the first one, and only then (JavaScript needs none).
 * A file that does not load throws one line: the message, with the line in that file where
 * known — never a place inside Node or the gateway.
 *
 * @example
 * ```ts
 * const mod = (await importUserModule('/srv/gw/rules/x-username.ts')) as { default?: unknown };
 * ```
 */
export async function importUserModule(path: string): Promise<unknown> {
  if (!hooksRegistered) {
    hooksRegistered = true;
    const data: UserModuleHooksData = { ownEntries: ownEntries() };
    register(new URL(`./user-module-hooks.${FROM_SOURCES ? 'ts' : 'js'}`, import.meta.url), { data });
  }
  try {
    if (TYPESCRIPT.test(path) && !FROM_SOURCES) await (typescriptLoader ??= loadTypeScript());
    return await import(pathToFileURL(path).href);
  } catch (err) {
    throw new SessionGateError('SG_ERR_CONFIG', describeLoadFailure(err, path), { cause: err });
  }
}

async function loadTypeScript(): Promise<void> {
  const tsx = await import('tsx/esm/api');
  tsx.register();
}

/**
 * The running package's entry points, from its package.json `exports` (`import` targets),
 * keyed by the specifier that names them: `sessiongate`, `sessiongate/conformance`, ...
 * From the sources, `dist/x.js` is `src/x.ts`.
 */
function ownEntries(): Record<string, string> {
  const root = new URL('../../', import.meta.url);
  const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
    name: string;
    exports: Record<string, { import?: string } | string>;
  };
  const entries: Record<string, string> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    let file = typeof target === 'string' ? target : target.import;
    if (file === undefined) continue;
    if (FROM_SOURCES) file = file.replace(/^\.\/dist\//, './src/').replace(/\.js$/, '.ts');
    entries[subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}`] = new URL(file, root).href;
  }
  return entries;
}

/**
 * One line for a file that did not load: a syntax error with its line and column (from tsx's
 * compiler, esbuild, or from Node), an error thrown while the file ran with the line in that
 * file, or the first line of anything else (a missing package names itself).
 */
function describeLoadFailure(err: unknown, path: string): string {
  const e = err as { message?: unknown; stack?: unknown; errors?: { location?: unknown; text?: unknown }[] };
  const first = e.errors?.[0] as { location?: { line?: number; column?: number }; text?: string } | undefined;
  if (first?.location?.line !== undefined)
    return `line ${first.location.line}:${first.location.column ?? 0}: ${first.text ?? 'syntax error'}`;
  const message = String(e.message ?? err);
  const esbuild = /:(\d+):(\d+): ERROR: (.*)/.exec(message);
  if (esbuild) return `line ${esbuild[1]}:${esbuild[2]}: ${esbuild[3]}`;
  const line = message.split('\n')[0] || 'cannot be loaded';
  const at = lineInFile(String(e.stack ?? ''), path);
  return at === undefined ? line : `line ${at}: ${line}`;
}

/** The line of the first stack frame (or syntax error header) in `path`, if any. */
function lineInFile(stack: string, path: string): string | undefined {
  const url = pathToFileURL(path).href;
  for (const place of [url, path]) {
    const i = stack.indexOf(`${place}:`);
    if (i >= 0) return /^:(\d+)/.exec(stack.slice(i + place.length))?.[1];
  }
  return undefined;
}
