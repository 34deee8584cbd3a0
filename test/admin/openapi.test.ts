import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { API_ROUTES } from '../../src/admin/api.js';
import { OPENAPI } from '../../src/admin/openapi.js';

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

describe('the OpenAPI document and the server agree', () => {
  it('every implemented route is documented, and every documented operation is implemented', () => {
    const implemented = API_ROUTES.map((r) => `${r.method} ${r.path}`).sort();
    const documented = Object.entries(OPENAPI.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((k) => METHODS.includes(k))
          .map((m) => `${m.toUpperCase()} ${path}`),
      )
      .sort();
    assert.deepEqual(implemented, documented);
  });

  it('operations without a token are exactly the ones with `security: []`', () => {
    const paths = OPENAPI.paths as unknown as Record<string, Record<string, { security?: unknown[] }>>;
    for (const r of API_ROUTES) {
      const op = paths[r.path]![r.method.toLowerCase()]!;
      assert.equal(op.security?.length === 0, !r.auth, `${r.method} ${r.path}`);
    }
  });

  it('every path parameter is declared and every $ref resolves', () => {
    const doc = OPENAPI as unknown as Record<string, unknown>;
    const resolve = (ref: string) =>
      ref
        .slice(2)
        .split('/')
        .reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], doc);
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref') assert.ok(resolve(v as string), `unresolved ${String(v)}`);
          else walk(v);
        }
      }
    };
    walk(doc);
    for (const [path, item] of Object.entries(
      OPENAPI.paths as unknown as Record<string, { parameters?: { $ref: string }[] }>,
    )) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = (item.parameters ?? []).map((p) => (resolve(p.$ref) as { name: string }).name);
      assert.deepEqual(declared, names, path);
    }
  });

  it('is OpenAPI 3.1 with an error schema of code and message', () => {
    assert.equal(OPENAPI.openapi, '3.1.0');
    assert.deepEqual(OPENAPI.components.schemas.Error.properties.error.required, ['code', 'message']);
  });
});
