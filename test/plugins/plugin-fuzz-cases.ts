// The generated misbehaviours of the plugin-reply campaign (plugin-fuzz.test.ts): for each, the
// instruction the fuzz fixtures (fixtures/process-fuzz.mjs, fixtures/py-fuzz) act on and the
// outcome the host must give. Seeded: the same seed gives the same cases.

export type Runtime = 'process' | 'sps-python';
export type Kind = 'aa' | 'credentialstore';
/** `ok`, or the failure the host must report. */
export type Outcome = 'ok' | 'malformed' | 'exception' | 'timeout' | 'crash';

export interface FuzzCase {
  /** The misbehaviour's name, for the figures. */
  name: string;
  act: Record<string, unknown>;
  expect: Outcome;
}

export interface Limits {
  maxMessageBytes: number;
  timeoutMs: number;
  /** Largest huge line generated. */
  hugeBytes: number;
}

/** mulberry32: a small seeded generator, enough to pick cases reproducibly. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Picker {
  constructor(readonly next: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  one<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  /** A line that is not an answer: JSON that is no object, or printable garbage. */
  noise(max: number): string {
    return this.chance(0.3)
      ? this.one(['null', '1', '"text"', '[]', '[1,2]', 'true', '{}'])
      : this.garbage(max);
  }

  /** Printable garbage with some non-ASCII and JSON-looking bits; never a newline. */
  garbage(max: number): string {
    const bits = ['{', '}', '"id":', '1', 'null', '[', ']', ' ', 'é', '\u{1F600}', '\t', 'x', '\\', ':'];
    let s = '';
    const n = this.int(1, max);
    while (s.length < n) s += this.one(bits);
    return s;
  }
}

const CONTROL = [
  '\r',
  '\n',
  '\r\n',
  '\u0000',
  '\u001b',
  '\u007f',
  '\u0085',
  '\u2028',
  '\u202e',
  '\u200b',
  '\t',
  ' ',
];

/** A result that breaks one documented type (the host must call it malformed). */
function badResult(p: Picker, kind: Kind): unknown {
  const user = () => p.one(['alice', 'bob']) + p.one(CONTROL) + p.one(['', 'x', 'X-Admin: 1']);
  const notString = () => p.one([1, true, {}, [], { a: 'b' }, ['alice']]);
  if (kind === 'credentialstore') {
    return p.one([
      { passwords: 'pw' },
      { passwords: [notString()] },
      { passwords: { a: 'pw' } },
      { private_keys: [['ssh-rsa']] },
      { private_keys: [['ssh rsa', 'PEM']] },
      { private_keys: [[1, 'PEM']] },
      { private_keys: 'PEM' },
      { passwords: ['pw'], cookie: p.one([[], 'c', 3]) },
      { passwords: ['pw'], session_cookie: p.one([[], 'c', 3]) },
      p.one([[], 'pw', 7, true]),
    ]);
  }
  const accept = { verdict: 'ACCEPT' };
  return p.one([
    { ...accept, gateway_user: user() },
    { ...accept, gateway_user: notString() },
    { ...accept, gateway_user: '' },
    { ...accept, gateway_groups: p.one(['ops', 7, { a: 1 }]) },
    { ...accept, gateway_groups: ['ops', p.one(['a,b', 'x\ny', notString(), '\u202e'])] },
    { ...accept, additional_metadata: p.one([{ mail: 'a@b' }, 7, ['x'], true]) },
    { ...accept, reason: notString() },
    { verdict: p.one(['accept', 'OK', 1, null, '', 'ACCEPT ']) },
    { verdict: 'NEEDINFO' },
    { verdict: 'NEEDINFO', question: { key: p.one(['one time', '', 7]), prompt: 'Code' } },
    { verdict: 'NEEDINFO', question: { key: 'otp', prompt: p.one(['Code\n', 7, null]) } },
    { verdict: 'NEEDINFO', question: { key: 'otp', prompt: 'Code', disable_echo: p.one(['no', 2, {}]) } },
    { ...accept, cookie: p.one([[], 'c', 3]) },
    { ...accept, session_cookie: p.one([[], 'c', 3]) },
    p.one([[], 'ACCEPT', 7, true]),
  ]);
}

/** A result that keeps every documented type (the host must take it). */
function goodResult(p: Picker, kind: Kind): unknown {
  const cookie = { n: p.int(0, 9), s: p.garbage(20) };
  if (kind === 'credentialstore') {
    return p.one([{ passwords: [p.garbage(30)], cookie }, { private_keys: [['ssh-ed25519', 'PEM']] }, {}]);
  }
  return {
    verdict: p.one(['ACCEPT', 'DENY', 'NONE']),
    gateway_user: p.one(['alice', 'CORP\\bob', 'ålice@example.org']),
    gateway_groups: ['Domain Admins', 'ops'],
    additional_metadata: p.garbage(50),
    reason: 'fine\nreally',
    cookie,
  };
}

/** One generated misbehaviour for a runtime and kind. */
export function fuzzCase(p: Picker, runtime: Runtime, kind: Kind, l: Limits): FuzzCase {
  const slowOk = Math.floor(l.timeoutMs * 0.3);
  const common: (() => FuzzCase)[] = [
    () => ({ name: 'wrong types', act: { do: 'result', value: badResult(p, kind) }, expect: 'malformed' }),
    () => ({ name: 'valid result', act: { do: 'result', value: goodResult(p, kind) }, expect: 'ok' }),
    () => ({ name: 'error', act: { do: 'error' }, expect: 'exception' }),
    () => ({ name: 'exit', act: { do: 'exit', code: p.int(0, 3) }, expect: 'crash' }),
    () => ({ name: 'slow answer', act: { do: 'slow', ms: p.int(0, slowOk) }, expect: 'ok' }),
    () => {
      const bytes = p.int(1, 500);
      return { name: 'stderr flood', act: { do: 'stderr', lines: p.int(1, 2000), bytes }, expect: 'ok' };
    },
    () => ({
      name: 'huge stderr line',
      act: { do: 'stderr', lines: 1, bytes: p.int(l.maxMessageBytes, l.hugeBytes), newline: p.chance(0.5) },
      expect: 'ok',
    }),
  ];
  const silent: (() => FuzzCase)[] = [
    () => ({ name: 'hang', act: { do: 'hang' }, expect: 'timeout' }),
    () => ({ name: 'too slow', act: { do: 'slow', ms: l.timeoutMs + 200 }, expect: 'timeout' }),
  ];
  const own = runtime === 'process' ? processOnly(p, l) : pythonOnly(p, l);
  // Misbehaviours without an answer cost a whole deadline each: a fifth of the cases.
  if (p.chance(0.2)) return p.one([...silent, ...own.silent])();
  return p.one([...common, ...own.answered])();
}

interface Makers {
  answered: (() => FuzzCase)[];
  silent: (() => FuzzCase)[];
}

function huge(p: Picker, l: Limits): number {
  return p.chance(0.5) ? p.int(l.maxMessageBytes + 1, l.hugeBytes) : p.int(1000, l.maxMessageBytes - 1000);
}

function processOnly(p: Picker, l: Limits): Makers {
  const silent: (() => FuzzCase)[] = [
    () => ({ name: 'garbage, no answer', act: { do: 'text', text: p.noise(300) + '\n' }, expect: 'timeout' }),
    () => ({ name: 'no newline', act: { do: 'nonewline' }, expect: 'timeout' }),
    () => ({ name: 'wrong id', act: { do: 'wrongid', offset: p.one([1, -1, 1000]) }, expect: 'timeout' }),
  ];
  const answered: (() => FuzzCase)[] = [
    () => ({ name: 'garbage line', act: { do: 'noise', text: p.noise(300) }, expect: 'ok' }),
    () => {
      const bytes = huge(p, l);
      const json = p.chance(0.5);
      const newline = p.chance(0.7);
      const expect = bytes + 200 > l.maxMessageBytes ? 'malformed' : json && newline ? 'ok' : 'timeout';
      return { name: 'huge line', act: { do: 'huge', bytes, json, newline }, expect };
    },
  ];
  return { silent, answered };
}

function pythonOnly(p: Picker, l: Limits): Makers {
  const silent: (() => FuzzCase)[] = [
    () => ({
      name: 'half line on the answer channel',
      act: { do: 'fd3', text: '{"id": 1, "resu', then: 'hang' },
      expect: 'timeout',
    }),
  ];
  const answered: (() => FuzzCase)[] = [
    () => ({ name: 'NaN in result', act: { do: 'nan' }, expect: 'exception' }),
    () => {
      const bytes = huge(p, l);
      const expect = bytes + 200 > l.maxMessageBytes ? 'malformed' : 'ok';
      return { name: 'huge result', act: { do: 'huge', bytes }, expect };
    },
    () => ({
      name: 'print flood',
      act: { do: 'print', lines: p.int(1, 1000), bytes: p.int(1, 300), newline: p.chance(0.8) },
      expect: 'ok',
    }),
    () => ({
      name: 'garbage on the answer channel',
      act: { do: 'fd3', text: p.noise(300) + '\n' },
      expect: 'ok',
    }),
    () => {
      const wrong = JSON.stringify({ id: p.int(-5, 10_000), result: { verdict: 'ACCEPT' } });
      return { name: 'answer to a wrong id', act: { do: 'fd3', text: wrong + '\n' }, expect: 'ok' };
    },
    () => {
      const text = 'y'.repeat(l.maxMessageBytes + p.int(1, 1000));
      return {
        name: 'huge line on the answer channel',
        act: { do: 'fd3', text, then: 'hang' },
        expect: 'malformed',
      };
    },
  ];
  return { silent, answered };
}
