import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, SessionGateError, isSessionGateError } from '../../src/core/errors.js';

const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
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
});
