import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, it } from 'node:test';

// Imports only go down (README "Layout"): a layer may import itself and the layers listed for it.
const ALLOWED: Record<string, string[]> = {
  core: [],
  store: ['core'],
  session: ['store', 'core'],
  plugins: ['session', 'store', 'core'],
  rules: ['session', 'store', 'core'],
  gateway: ['rules', 'plugins', 'session', 'store', 'core'],
  admin: ['session', 'store', 'core'],
  // The SSH gateway reuses the HTTP gateway's configuration and access-policy runner.
  ssh: ['gateway', 'rules', 'plugins', 'session', 'store', 'core'],
  cli: ['ssh', 'gateway', 'admin', 'rules', 'plugins', 'session', 'store', 'core'],
};

/** The store drivers: each a folder of src/store/ that may import shared/ and contract.ts only. */
const STORE_DRIVERS = ['memory', 'sqlite', 'redis'];

/**
 * Import circles that are known and not yet untangled, each as its files (sorted, relative to
 * src/, joined by " <-> "). An entry that no longer is a circle fails the test, so the list only
 * shrinks.
 */
const KNOWN_CIRCLES: string[] = [];

const src = resolve(dirname(new URL(import.meta.url).pathname), '../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Source and documentation files under `dir` (fixtures included, node_modules never). */
function textFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : textFiles(p);
    return /\.(ts|mjs|js|md|py)$/.test(name) ? [p] : [];
  });
}

/** The relative specifiers a file imports or re-exports statically (`import type` included). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|^import) '(\.{1,2}\/[^']+)'/gm)].map((m) => m[1]!);
}

/** Each module (relative to src/) and the modules it imports, for every .ts file under `root`. */
function importGraph(root: string): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files(root)) {
    const targets = importsOf(file).map((spec) =>
      relative(root, resolve(dirname(file), spec)).replace(/\.js$/, '.ts'),
    );
    graph.set(relative(root, file), targets);
  }
  return graph;
}

/**
 * The import circles of a graph: its strongly connected components of more than one module (or a
 * module importing itself), found with Tarjan's algorithm. Type-only imports count: they tie
 * the two files together for a reader and for the compiler just the same.
 */
function importCircles(graph: Map<string, string[]>): string[] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)!.includes(v)) circles.push(component.sort().join(' <-> '));
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return circles.sort();
}

describe('layers', () => {
  it('no module imports a higher layer', () => {
    const problems: string[] = [];
    for (const file of files(src)) {
      const layer = relative(src, file).split('/')[0]!;
      if (!file.includes('/', src.length + 1)) continue; // src/index.ts re-exports everything
      const allowed = ALLOWED[layer];
      assert.ok(allowed, `unknown layer folder src/${layer}`);
      for (const spec of importsOf(file)) {
        const target = relative(src, resolve(dirname(file), spec)).split('/')[0]!;
        if (target !== layer && !allowed.includes(target))
          problems.push(`${relative(src, file)} imports ${spec}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('no store driver imports another driver, open.ts or the conformance suite (shared/ and contract.ts only)', () => {
    const store = join(src, 'store');
    const present = readdirSync(store).filter((name) => statSync(join(store, name)).isDirectory());
    assert.deepEqual(
      present.sort(),
      [...STORE_DRIVERS, 'shared'].sort(),
      'a new folder in src/store: list it here',
    );
    const problems: string[] = [];
    for (const driver of [...STORE_DRIVERS, 'shared']) {
      for (const file of files(join(store, driver))) {
        for (const spec of importsOf(file)) {
          const target = relative(store, resolve(dirname(file), spec));
          if (target.startsWith('..')) continue; // below the store layer (the first test checks which)
          const [top] = target.split('/');
          const allowed = top === driver || top === 'shared' || target === 'contract.js';
          if (!allowed) problems.push(`${relative(src, file)} imports ${spec}`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  it('no import circles between modules (beyond the known ones listed above)', () => {
    const circles = importCircles(importGraph(src));
    assert.deepEqual(
      circles.filter((c) => !KNOWN_CIRCLES.includes(c)),
      [],
      'import circles: move the piece both sides need into a module below them',
    );
    assert.deepEqual(
      KNOWN_CIRCLES.filter((c) => !circles.includes(c)),
      [],
      'no longer a circle: remove it from KNOWN_CIRCLES',
    );
  });

  it('the circle finder reports a circle of three modules and a module importing itself, not what hangs off them', () => {
    const graph = new Map([
      ['a.ts', ['b.ts']],
      ['b.ts', ['c.ts']],
      ['c.ts', ['a.ts', 'd.ts']],
      ['d.ts', []],
      ['e.ts', ['e.ts']],
    ]);
    assert.deepEqual(importCircles(graph), ['a.ts <-> b.ts <-> c.ts', 'e.ts']);
  });

  it('no text cites a section of a DESIGN document (none is in the repository; docs/ is)', () => {
    const root = resolve(src, '..');
    const citation = new RegExp(['DESIGN', '§'].join(' ')); // spelt apart: this file is scanned too
    const cites = ['src', 'test', 'bench', 'docs', 'scripts', 'examples']
      .flatMap((dir) => textFiles(join(root, dir)))
      .filter((file) => citation.test(readFileSync(file, 'utf8')))
      .map((file) => relative(root, file));
    assert.deepEqual(cites, []);
  });
});
