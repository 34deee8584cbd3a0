import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { semiSpaceChosen, serveV8Flags } from '../../src/cli/relaunch.js';

const SEMI_64 = ['--min-semi-space-size=64', '--max-semi-space-size=64'];

describe('serveV8Flags', () => {
  it('gives fixed semi-spaces and no memory reducer by default', () => {
    assert.deepEqual(serveV8Flags({ semiSpaceMb: 64, memoryReducer: false }, [], undefined), [
      ...SEMI_64,
      '--no-memory-reducer',
    ]);
  });

  it('leaves out what the operator chose, or asked to keep', () => {
    const keep = { semiSpaceMb: 64, memoryReducer: false };
    assert.deepEqual(serveV8Flags(keep, ['--max-semi-space-size=8'], undefined), ['--no-memory-reducer']);
    assert.deepEqual(serveV8Flags(keep, [], '--max_semi_space_size=8 --max-old-space-size=512'), [
      '--no-memory-reducer',
    ]);
    assert.deepEqual(serveV8Flags(keep, ['--memory-reducer'], undefined), SEMI_64);
    assert.deepEqual(serveV8Flags(keep, ['--no_memory_reducer'], undefined), SEMI_64);
    assert.deepEqual(serveV8Flags({ semiSpaceMb: 0, memoryReducer: true }, [], undefined), []);
    assert.deepEqual(serveV8Flags({ semiSpaceMb: 16, memoryReducer: true }, [], undefined), [
      '--min-semi-space-size=16',
      '--max-semi-space-size=16',
    ]);
  });

  it('adds nothing to the process it relaunched (its command line has the flags)', () => {
    const first = serveV8Flags({ semiSpaceMb: 64, memoryReducer: false }, ['--import', 'tsx'], undefined);
    assert.deepEqual(
      serveV8Flags({ semiSpaceMb: 64, memoryReducer: false }, ['--import', 'tsx', ...first], undefined),
      [],
    );
  });

  it('semiSpaceChosen reads both spellings and ignores other sizes', () => {
    assert.equal(semiSpaceChosen(['--min_semi_space_size=2'], undefined), true);
    assert.equal(semiSpaceChosen([], '--max-old-space-size=4096'), false);
  });
});
