import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import type { Logger } from '../../src/core/logger.js';
import { CastRecorder, listRecordings, type CastOptions } from '../../src/ssh/recording.js';

const root = mkdtempSync(join(tmpdir(), 'sg-cast-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

type Event = [number, 'o' | 'i' | 'r', string];

/** Parses and validates an asciicast v2 file: a header object, then [time, code, data] lines. */
function readCast(file: string): { header: Record<string, unknown>; events: Event[] } {
  const text = readFileSync(file, 'utf8');
  assert.ok(text.endsWith('\n'));
  const [first = '', ...rest] = text.slice(0, -1).split('\n');
  const header = JSON.parse(first) as Record<string, unknown>;
  assert.equal(header.version, 2);
  assert.ok(Number.isInteger(header.width) && Number.isInteger(header.height));
  const events = rest.map((line) => JSON.parse(line) as Event);
  let last = 0;
  for (const e of events) {
    assert.equal(e.length, 3);
    assert.equal(typeof e[0], 'number');
    assert.ok(e[0] >= last, 'times never go back');
    last = e[0];
    assert.ok(['o', 'i', 'r'].includes(e[1]));
    assert.equal(typeof e[2], 'string');
    if (e[1] === 'r') assert.match(e[2], /^\d+x\d+$/);
  }
  return { header, events };
}

const options = (over: Partial<CastOptions> = {}): CastOptions => ({
  dir: join(root, `d${n++}`, 'casts'),
  sessionId: '0123456789abcdef0123456789abcdef',
  channel: 0,
  width: 80,
  height: 24,
  input: false,
  clock: new ManualClock(1_765_000_000_500),
  ...over,
});

const collecting = (): Logger & { lines: unknown[][] } => {
  const lines: unknown[][] = [];
  const push = (fields: object, message: string): void => void lines.push([fields, message]);
  return { lines, info: push, warn: push, error: push };
};

describe('CastRecorder', () => {
  it('round trip: header, events with times from the clock, 0600 file in a 0700 folder', async () => {
    const clock = new ManualClock(1_765_000_000_500);
    const o = options({ clock, input: true, term: 'xterm-256color', command: 'uptime', title: 'db1' });
    const cast = CastRecorder.open(o);
    assert.equal(cast.file, join(o.dir, `${o.sessionId}-0.cast`));
    cast.output(Buffer.from('$ '));
    clock.advance(250);
    cast.input(Buffer.from('ls\r'));
    clock.advance(1000);
    cast.output(Buffer.from('a.txt\r\n"quoted" \\ \u0007'));
    clock.advance(1);
    cast.resize(120, 40);
    await cast.close();
    await cast.close();
    assert.equal(statSync(o.dir).mode & 0o777, 0o700);
    assert.equal(statSync(cast.file).mode & 0o777, 0o600);
    assert.equal(cast.bytes, statSync(cast.file).size);
    const { header, events } = readCast(cast.file);
    assert.deepEqual(header, {
      version: 2,
      width: 80,
      height: 24,
      timestamp: 1_765_000_000,
      command: 'uptime',
      title: 'db1',
      env: { TERM: 'xterm-256color' },
    });
    assert.deepEqual(events, [
      [0, 'o', '$ '],
      [0.25, 'i', 'ls\r'],
      [1.25, 'o', 'a.txt\r\n"quoted" \\ \u0007'],
      [1.251, 'r', '120x40'],
    ]);
  });

  it('keeps a multi-byte character split across chunks whole; invalid bytes become U+FFFD', async () => {
    const o = options();
    const cast = CastRecorder.open(o);
    const euro = Buffer.from('€', 'utf8');
    const smile = Buffer.from('😀', 'utf8');
    cast.output(Buffer.concat([Buffer.from('a'), euro.subarray(0, 1)]));
    cast.output(euro.subarray(1, 2));
    cast.output(Buffer.concat([euro.subarray(2), smile.subarray(0, 3)]));
    cast.output(Buffer.concat([smile.subarray(3), Buffer.from([0xff]), Buffer.from('b')]));
    cast.output(smile.subarray(0, 2));
    await cast.close();
    const text = readCast(cast.file)
      .events.map((e) => e[2])
      .join('');
    assert.equal(text, 'a€😀\uFFFDb\uFFFD', 'a dangling half character at close is one U+FFFD');
    assert.ok(!readFileSync(cast.file, 'utf8').includes('\uFFFD€'));
  });

  it('ignores input unless asked to record it', async () => {
    const cast = CastRecorder.open(options({ input: false }));
    cast.input(Buffer.from('secret\r'));
    cast.output(Buffer.from('ok'));
    await cast.close();
    const { header, events } = readCast(cast.file);
    assert.deepEqual(events, [[0, 'o', 'ok']]);
    assert.equal('env' in header, false);
    assert.doesNotMatch(readFileSync(cast.file, 'utf8'), /secret/);
  });

  it('times never go back when the clock does', async () => {
    const clock = new ManualClock(10_000);
    const cast = CastRecorder.open(options({ clock }));
    clock.advance(500);
    cast.output(Buffer.from('x'));
    clock.set(9_000);
    cast.output(Buffer.from('y'));
    await cast.close();
    assert.deepEqual(
      readCast(cast.file).events.map((e) => e[0]),
      [0.5, 0.5],
    );
  });

  it('a file-system error is logged once and recording stops, without throwing', async () => {
    const blocker = join(root, `d${n++}`);
    writeFileSync(blocker, 'a file where the folder should be');
    const logger = collecting();
    const cast = CastRecorder.open(options({ dir: join(blocker, 'casts'), logger }));
    cast.output(Buffer.from('lost'));
    cast.resize(1, 1);
    await cast.close();
    assert.equal(logger.lines.length, 1);
    assert.match(String(logger.lines[0]?.[1]), /recording stopped/);
  });

  it('never overwrites an existing recording (asynchronous open error, logged once)', async () => {
    const o = options();
    mkdirSync(o.dir, { recursive: true });
    const existing = join(o.dir, `${o.sessionId}-0.cast`);
    writeFileSync(existing, 'evidence\n');
    const logger = collecting();
    const cast = CastRecorder.open({ ...o, logger });
    cast.output(Buffer.from('new'));
    await cast.close();
    assert.equal(readFileSync(existing, 'utf8'), 'evidence\n');
    assert.equal(logger.lines.length, 1);
    assert.deepEqual((logger.lines[0]?.[0] as { error?: string }).error, 'EEXIST');
  });

  it('refuses a session id that could leave the folder', () => {
    assert.throws(() => CastRecorder.open(options({ sessionId: '../x' })), TypeError);
    assert.throws(() => CastRecorder.open(options({ channel: -1 })), TypeError);
  });
});

describe('listRecordings', () => {
  it('lists one session’s channels in channel order', async () => {
    const dir = join(root, `d${n++}`);
    const id = 'aa'.repeat(16);
    for (const channel of [10, 2, 0])
      await CastRecorder.open(options({ dir, channel, sessionId: id })).close();
    await CastRecorder.open(options({ dir, sessionId: 'bb'.repeat(16) })).close();
    writeFileSync(join(dir, `${id}-x.cast`), '');
    writeFileSync(join(dir, `${id}-3.cast.tmp`), '');
    assert.deepEqual(
      listRecordings(dir, id),
      [0, 2, 10].map((c) => join(dir, `${id}-${c}.cast`)),
    );
    assert.deepEqual(listRecordings(join(root, 'missing'), id), []);
    assert.deepEqual(listRecordings(dir, '../etc'), []);
  });
});
