import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { idOfToken, isSessionId, isToken, newToken, parseToken } from '../../src/core/ids.js';

describe('tokens and ids', () => {
  it('a token is 256 random bits; its id is the first 128 bits of its SHA-256, both ways of deriving it agree', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const { token, id } = newToken();
      assert.ok(isToken(token) && isSessionId(id));
      assert.equal(Buffer.from(token, 'base64url').length, 32);
      const expected = createHash('sha256').update(token).digest('hex').slice(0, 32);
      assert.equal(id, expected);
      assert.equal(idOfToken(token), expected, 'the lookup derivation');
      seen.add(token);
    }
    assert.equal(seen.size, 2000);
  });

  it('refuses an id where a token is expected (ids are in logs)', () => {
    const { id } = newToken();
    assert.throws(() => parseToken(id));
  });
});
