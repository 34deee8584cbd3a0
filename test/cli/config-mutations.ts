// Seeded mutations of a valid sessiongate.yaml for the configuration fuzz campaign: values,
// types, keys, structure (through the parsed document) and YAML syntax, encodings and sizes
// (through the text).
import { parse, stringify } from 'yaml';

/** A small seeded generator (mulberry32): the same seed gives the same cases. */
export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** A password that must never appear in any output. */
export const SECRET = 'Fuzz-S3cret-7f3a91';

const STRINGS = [
  '',
  ' ',
  'demo',
  'demo2',
  'memory',
  'memory:',
  'sqlite:./var/other.db',
  'sqlite:',
  'sqlite:/',
  '\0sqlite:x',
  'file:///etc/passwd',
  `redis://:${SECRET}@127.0.0.1:1`,
  `redis://u:${SECRET}@:99999`,
  'redis://127.0.0.1:0',
  'rediss+cluster://a:1,b:2',
  'redis://h:6379/x',
  'redis://h:6379?prefix=',
  'redis://h:6379?bogus=1',
  'http://127.0.0.1:99999',
  'http://127.0.0.1:1',
  'https://[::1]:8443/app/',
  'http://u:p@h',
  'http://h/?q',
  'ftp://h',
  'http://',
  'http://h:0',
  '10.0.0.0/8',
  '1.2.3.4/8/8',
  'fe80::1%eth0',
  '::1',
  '10.0.0.0/33',
  '0.0.0.0',
  '::',
  'localhost',
  'exa mple',
  '-bad-',
  'a'.repeat(300),
  'évènement',
  '日本',
  '\u202e',
  '\t',
  '\n',
  '%s%n',
  '${HOME}',
  '../../../../etc/shadow',
  './var/users.yaml',
  './nosuch.yaml',
  '/',
  'logon',
  'allow',
  'deny',
  'users',
  'nosuch',
  'default',
  'MRHSession',
  '__Host-SG',
  '__Secure-SG',
  'X-USERNAME',
  'bad header',
  'session.logon.last.username',
  'auto',
  'Lax',
  'None',
  'evict_oldest',
  'refuse',
  'debug',
  'trace',
  'true',
  'null',
  '0x1F',
  '1e3',
  '-0',
  'NaN',
  '~',
];
const NUMBERS = [
  0,
  1,
  -1,
  2,
  3,
  80,
  443,
  1023,
  1024,
  8080,
  65_535,
  65_536,
  99_999,
  2 ** 31,
  2 ** 53 + 2,
  1.5,
  -0.5,
  1e21,
  300,
  900,
];

function randomValue(r: Random, depth = 0): unknown {
  switch (r.int(depth > 1 ? 5 : 8)) {
    case 0:
    case 1:
      return r.pick(STRINGS);
    case 2:
      return r.pick(NUMBERS);
    case 3:
      return r.pick([true, false]);
    case 4:
      return null;
    case 5:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    case 6:
      return Object.fromEntries(
        Array.from({ length: r.int(3) }, () => [r.pick(STRINGS), randomValue(r, depth + 1)]),
      );
    default:
      return r.pick(STRINGS) + r.pick(STRINGS);
  }
}

type Container = Record<string, unknown> | unknown[];
const isContainer = (v: unknown): v is Container => v !== null && typeof v === 'object';

/** Every (container, key) of the document, so a mutation can land anywhere. */
function slots(doc: unknown): [Container, string | number][] {
  const out: [Container, string | number][] = [];
  const walk = (v: unknown) => {
    const entries: [string | number, unknown][] = Array.isArray(v)
      ? v.map((item, i) => [i, item])
      : isContainer(v)
        ? Object.entries(v)
        : [];
    for (const [k, item] of entries) {
      out.push([v as Container, k]);
      walk(item);
    }
  };
  walk(doc);
  return out;
}

/** Change the parsed document: a value, a type, a key, or the shape. */
function mutateStructure(r: Random, text: string): string {
  const doc: unknown = parse(text);
  const all = slots(doc);
  const times = 1 + r.int(3);
  for (let n = 0; n < times && all.length > 0; n++) {
    const [container, key] = r.pick(all);
    const get = () => (container as Record<string | number, unknown>)[key];
    const set = (v: unknown) => ((container as Record<string | number, unknown>)[key] = v);
    switch (r.int(7)) {
      case 0:
        if (Array.isArray(container)) container.splice(key as number, 1);
        else delete container[key as string];
        break;
      case 1:
        if (!Array.isArray(container)) {
          const value = get();
          delete container[key as string];
          container[
            r.pick([`${String(key)}x`, String(key).slice(1), String(key).toUpperCase(), r.pick(STRINGS)])
          ] = value;
        }
        break;
      case 2:
        if (Array.isArray(container)) container.push(structuredClone(get()));
        else container[r.pick(STRINGS) || 'extra'] = randomValue(r);
        break;
      case 3:
        set(isContainer(get()) ? JSON.stringify(get()) : [get()]);
        break;
      default:
        set(randomValue(r));
    }
  }
  return stringify(doc, { lineWidth: 0 });
}

const SNIPPETS = [
  '\t',
  ': ',
  '- ',
  '{',
  '}',
  '[',
  ']',
  '&a ',
  '*a',
  '*nosuch',
  '!!binary ',
  '!!js/function ',
  '? ',
  '|',
  '>',
  '"',
  "'",
  '#',
  '%YAML 1.1\n',
  '---\n',
  '...\n',
  '\u00a0',
  '\ufeff',
  '\r',
  '<<: *a\n',
  '!!str ',
  '!!int ',
  '@',
  '`',
];

/** Change the text: YAML syntax, encodings, sizes. */
function mutateText(r: Random, text: string): string {
  const lines = text.split('\n');
  const at = r.int(lines.length);
  switch (r.int(10)) {
    case 0:
      lines.splice(at, 1);
      return lines.join('\n');
    case 1:
      lines.splice(at, 0, lines[r.int(lines.length)]!);
      return lines.join('\n');
    case 2:
      lines[at] = ' '.repeat(r.int(5)) + lines[at]!.trimStart();
      return lines.join('\n');
    case 3: {
      const i = r.int(text.length + 1);
      return text.slice(0, i) + r.pick(SNIPPETS) + text.slice(i);
    }
    case 4:
      return text.slice(0, r.int(text.length));
    case 5:
      return r.pick(['\ufeff', '\ufeff\ufeff', '\u0000', '\x1b[31m']) + text;
    case 6:
      return text.replace(/\n/g, r.pick(['\r\n', '\r', '\n\n']));
    case 7: {
      // Sizes: many keys, a long value, deep nesting, or an alias expansion.
      const n = r.pick([1_000, 20_000, 70_000]);
      const kind = r.int(4);
      if (kind === 0)
        return `${text}\nbig:\n${Array.from({ length: n }, (_, i) => `  k${i}: ${i}`).join('\n')}\n`;
      if (kind === 1) return `${text}\nrules_comment: "${'y'.repeat(n * 20)}"\n`;
      if (kind === 2) return `${text}\ndeep: ${'['.repeat(n / 100)}${']'.repeat(n / 100)}\n`;
      const levels = 'abcdefg'.split('');
      return `${levels
        .map(
          (l, i) =>
            `${l}: &${l} [${
              i === 0
                ? '1,1,1,1,1,1,1,1,1,1'
                : Array(10)
                    .fill(`*${levels[i - 1]!}`)
                    .join(',')
            }]`,
        )
        .join('\n')}\n${text}`;
    }
    case 8:
      // Latin-1 bytes read as UTF-8, and a lone surrogate.
      return text.replace(/e/, r.pick(['\ufffd', '\ud800', 'é']));
    default:
      lines[at] = `${lines[at]!}${r.pick(SNIPPETS)}${r.pick(STRINGS)}`;
      return lines.join('\n');
  }
}

/** One mutation of `base`: the parsed document most of the time, the text otherwise. */
export function mutate(r: Random, base: string): { text: string; kind: 'structure' | 'text' } {
  if (r.next() < 0.6) return { text: mutateStructure(r, base), kind: 'structure' };
  return { text: mutateText(r, base), kind: 'text' };
}
