// Module resolution hooks (node:module `register`) for the rule and plugin files of the
// operator: they run in Node's hooks thread, so this file imports nothing of the gateway.
import { readFile } from 'node:fs/promises';
import type { InitializeHook, ResolveHook } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What the gateway hands over when it registers these hooks. */
export interface UserModuleHooksData {
  /** 'sessiongate' and 'sessiongate/SUBPATH' → the file URL of the running gateway's own copy. */
  ownEntries: Record<string, string>;
}

let ownEntries = new Map<string, string>();

export const initialize: InitializeHook<UserModuleHooksData> = (data) => {
  ownEntries = new Map(Object.entries(data.ownEntries));
};

/** A TypeScript file that is not a CommonJS one by its name (.cts). */
const ES_TYPESCRIPT = /\.m?ts$/;
/** A statement only an ES module can have, at the start of a line. */
const MODULE_SYNTAX = /^\s*(import\s*[\w{*'"]|export\s)/m;

/**
 * `import ... from 'sessiongate'` in a file of the operator resolves to the running gateway,
 * wherever the file is and whether or not a package.json or node_modules is near it: the
 * definePlugin/defineRules the file calls are the gateway's own.
 *
 * And an operator's TypeScript file is an ES module, as is a JavaScript file with `import` or
 * `export` statements: in a folder without a package.json, tsx would take it for CommonJS,
 * then find `import` in it and fail with "Cannot require() ES Module ... in a cycle".
 * Dependencies' files (under node_modules) keep their own format.
 */
export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  const own = ownEntries.get(specifier);
  if (own !== undefined) return { url: own, format: 'module', shortCircuit: true };
  const resolved = await nextResolve(specifier, context);
  if (!resolved.url.startsWith('file:')) return resolved;
  const path = new URL(resolved.url).pathname;
  if (path.includes('/node_modules/')) return resolved;
  if (ES_TYPESCRIPT.test(path)) return { ...resolved, format: 'module' };
  if (resolved.format === 'commonjs' && path.endsWith('.js')) {
    const source = await readFile(fileURLToPath(resolved.url), 'utf8').catch(() => '');
    if (MODULE_SYNTAX.test(source)) return { ...resolved, format: 'module' };
  }
  return resolved;
};
