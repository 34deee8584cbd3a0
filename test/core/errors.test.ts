import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { ERROR_CODES, SessionGateError, isSessionGateError, sessionNotFound } from '../../src/core/errors.js';
import { newToken } from '../../src/core/ids.js';
import { BadResponseError, ClientAbortedError } from '../../src/gateway/proxy/errors.js';
import { PluginCallError } from '../../src/plugins/errors.js';
import { RuleFailure, RuleLoadError } from '../../src/rules/ruleset.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const srcDir = new URL('../../src/', import.meta.url).pathname;

/** Every TypeScript file under src/ with its text, paths relative to src/. */
function sources(dir = srcDir): { file: string; text: string }[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') ? [{ file: relative(srcDir, p), text: readFileSync(p, 'utf8') }] : [];
  });
}

const documented = [...doc.matchAll(/^\| `(SG_ERR_[A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => ({
  code: m[1]!,
  status: Number(m[2]),
}));

describe('error catalogue', () => {
  it('docs/errors.md lists every code with its status, and nothing else', () => {
    const inCode = Object.entries(ERROR_CODES).map(([code, v]) => ({ code, status: v.status }));
    assert.deepEqual(
      [...documented].sort((a, b) => a.code.localeCompare(b.code)),
      [...inCode].sort((a, b) => a.code.localeCompare(b.code)),
    );
  });

  it('every code is SG_ERR_ upper snake case and used at most once in the doc', () => {
    for (const code of Object.keys(ERROR_CODES)) assert.match(code, /^SG_ERR_[A-Z]+(_[A-Z]+)*$/);
    assert.equal(new Set(documented.map((d) => d.code)).size, documented.length);
  });

  it('typed errors carry code and status', () => {
    const err = new SessionGateError('SG_ERR_SESSION_NOT_FOUND', 'gone');
    assert.equal(err.status, 404);
    assert.ok(isSessionGateError(err, 'SG_ERR_SESSION_NOT_FOUND'));
    assert.ok(!isSessionGateError(new Error('x')));
  });

  it('one root class: no error class in src/ extends Error but SessionGateError', () => {
    const roots = sources().flatMap(({ file, text }) =>
      [...text.matchAll(/class (\w+) extends Error\b/g)].map((m) => `${file}: ${m[1]}`),
    );
    assert.deepEqual(roots, ['core/errors.ts: SessionGateError']);
  });

  it('every SG_ code written in src/ is in the catalogue', () => {
    const unknown = sources().flatMap(({ file, text }) =>
      [...text.matchAll(/'(SG_[A-Z_]+)'/g)]
        .map((m) => m[1]!)
        .filter((code) => !Object.hasOwn(ERROR_CODES, code))
        .map((code) => `${file}: ${code}`),
    );
    assert.deepEqual(unknown, []);
  });

  it('plugin, rule and proxy errors are catalogue errors with their own codes', () => {
    const cases: [SessionGateError, string][] = [
      [new PluginCallError('timeout', 'no answer within 10 ms'), 'SG_ERR_PLUGIN_FAILED'],
      [new RuleLoadError('rules/x.ts', 'unknown event X'), 'SG_ERR_RULE_LOAD'],
      [new RuleFailure('rules/x.ts', 'HTTP_REQUEST', 'exception', 'boom'), 'SG_ERR_RULE_FAILED'],
      [new BadResponseError('cannot pass on the response'), 'SG_ERR_UPSTREAM_BAD_RESPONSE'],
      [new ClientAbortedError(), 'SG_ERR_CLIENT_ABORTED'],
    ];
    for (const [err, code] of cases) {
      assert.ok(err instanceof SessionGateError, `${err.name} is a SessionGateError`);
      assert.equal(err.code, code);
    }
  });

  it('"no live session" is written in one place, and never shows a token or a malformed id', () => {
    const writers = sources()
      .filter(({ text }) => text.includes('no live session with'))
      .map(({ file }) => file);
    assert.deepEqual(writers, ['core/errors.ts']);
    const { token, id } = newToken();
    const found = sessionNotFound(id);
    assert.equal(found.code, 'SG_ERR_SESSION_NOT_FOUND');
    assert.equal(found.message, `no live session with id ${id}`); // an id is public: a hash of the token
    for (const secretish of [token, `${id}x`, 'x'.repeat(10_000)]) {
      assert.equal(sessionNotFound(secretish).message, 'no live session with this id');
    }
  });
});
