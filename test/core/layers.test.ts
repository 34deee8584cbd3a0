import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, it } from 'node:test';

// DESIGN §1: imports only go down. A layer may import itself and the layers listed for it.
const ALLOWED: Record<string, string[]> = {
  core: [],
  store: ['core'],
  session: ['store', 'core'],
  plugins: ['session', 'store', 'core'],
  rules: ['session', 'store', 'core'],
  gateway: ['rules', 'plugins', 'session', 'store', 'core'],
  admin: ['session', 'store', 'core'],
  cli: ['gateway', 'admin', 'rules', 'plugins', 'session', 'store', 'core'],
};

const src = resolve(dirname(new URL(import.meta.url).pathname), '../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layers', () => {
  it('no module imports a higher layer', () => {
    const problems: string[] = [];
    for (const file of files(src)) {
      const layer = relative(src, file).split('/')[0]!;
      if (!file.includes('/', src.length + 1)) continue; // src/index.ts re-exports everything
      const allowed = ALLOWED[layer];
      assert.ok(allowed, `unknown layer folder src/${layer}`);
      for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const target = relative(src, resolve(dirname(file), m[1]!)).split('/')[0]!;
        if (target !== layer && !allowed.includes(target))
          problems.push(`${relative(src, file)} imports ${m[1]}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
