import {
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Document,
  type Node,
} from 'yaml';
import { SessionGateError } from '../../core/errors.js';

/**
 * The largest configuration file read (bytes). A real one is a few kB; the limit bounds the
 * time and memory a mistaken or hostile file can cost before anything is checked.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Most aliases (`*name`) in one file. */
const MAX_ALIASES = 1000;

/** Most values one file may expand to through aliases (`*name`); a real file has few. */
const MAX_EXPANDED_NODES = 100_000;

/** The one problem of a file over MAX_CONFIG_BYTES. */
export const tooLarge = (bytes: number): string =>
  `the file is larger than ${MAX_CONFIG_BYTES} bytes (${bytes} bytes); not read`;

/** YAML errors listed before the rest are summed up in one line. */
const MAX_YAML_ERRORS = 10;

/** The first line of a library message, without the file text it quotes. */
const withoutQuote = (message: string): string =>
  (message.split('\n')[0] ?? '').split('"')[0]!.replace(/[\s:]+$/, '') || 'cannot be read';

/** A config file read as YAML: its plain value, and where a path of it is written. */
export interface YamlSource {
  raw: unknown;
  /** ` (line N)` of the deepest written part of `path`, or '' when nothing of it is written. */
  lineOf(path: readonly (string | number)[]): string;
}

/** The problems of text that cannot be read as a configuration at all. */
export class YamlSourceError extends SessionGateError {
  constructor(readonly problems: string[]) {
    super('SG_ERR_CONFIG', problems.join('; '));
    this.name = 'YamlSourceError';
  }
}

/**
 * Parse configuration text in time linear in its size: the yaml library's own duplicate-key
 * check compares each key with every earlier one of its mapping (quadratic), so it is off and
 * duplicates are found here with one set per mapping. Throws a YamlSourceError.
 *
 * @example
 * ```ts
 * const { raw, lineOf } = readYamlSource('store: memory\n');
 * lineOf(['store']); // ' (line 1)'
 * ```
 */
export function readYamlSource(source: string): YamlSource {
  const bytes = Buffer.byteLength(source, 'utf8');
  if (bytes > MAX_CONFIG_BYTES) throw new YamlSourceError([tooLarge(bytes)]);
  const lines = new LineCounter();
  const lineAt = (offset: number) => ` (line ${lines.linePos(offset).line})`;
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    // The first errors only: the rest usually follow from them. The library quotes the text
    // it stumbled on, which may be a password: the quote is left out.
    const shown = doc.errors
      .slice(0, MAX_YAML_ERRORS)
      .map((e) => `invalid YAML: ${withoutQuote(e.message)}${lineAt(e.pos[0])}`);
    const more = doc.errors.length - shown.length;
    throw new YamlSourceError(
      more > 0 ? [...shown, `invalid YAML: ${more} more error(s) after these`] : shown,
    );
  }
  const problems = [...duplicateKeys(doc, lineAt), ...aliasBomb(doc, lineAt)];
  if (problems.length > 0) throw new YamlSourceError(problems);
  let raw: unknown;
  try {
    // Aliases are bounded above; the library's own bound stays as a second guard.
    raw = doc.toJS({ maxAliasCount: -1 }) ?? {};
  } catch (err) {
    throw new YamlSourceError([`invalid YAML: ${withoutQuote((err as Error).message)}`]);
  }
  return { raw, lineOf: lineFinder(doc, lineAt) };
}

/** `map keys must be unique` for every repeated scalar key, at the repeat. */
function duplicateKeys(doc: Document, lineAt: (offset: number) => string): string[] {
  const problems: string[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? pair.key.value : undefined;
        if (key === undefined || key === null || typeof key === 'object') continue;
        if (seen.has(key)) {
          const at = isNode(pair.key) && pair.key.range ? lineAt(pair.key.range[0]) : '';
          problems.push(
            `invalid YAML: map keys must be unique: ${String(key).slice(0, 80)} is written twice${at}`,
          );
        }
        seen.add(key);
      }
    },
  });
  return problems;
}

/**
 * The first alias that makes the document expand beyond MAX_EXPANDED_NODES values (a "billion
 * laughs" file), counted once per anchored node so the count itself stays cheap.
 */
function aliasBomb(doc: Document, lineAt: (offset: number) => string): string[] {
  const anchors = new Map<string, Node>();
  const sizes = new Map<Node, number>();
  const open = new Set<Node>();
  let expanded = 0; // values that aliases add, in document order
  let aliases = 0;
  let culprit: { node: Node; why: string } | undefined;
  const size = (node: unknown): number => {
    if (!isNode(node)) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    // Anchors count from where they are written on, like the library resolves them.
    if (node.anchor) anchors.set(node.anchor, node);
    let n = 1;
    if (isAlias(node)) {
      // The library finds an alias's anchor by a scan from the start of the file: many
      // aliases cost the square of their number, so their count is bounded.
      if (++aliases > MAX_ALIASES) culprit ??= { node, why: `more than ${MAX_ALIASES} aliases in one file` };
      const target = anchors.get(node.source);
      if (target && open.has(target)) {
        culprit ??= { node, why: `alias *${node.source} is inside its own anchor` };
        return 1;
      }
      n = target ? size(target) : 1;
      expanded += n;
      if (expanded > MAX_EXPANDED_NODES)
        culprit ??= { node, why: `aliases expand the file to more than ${MAX_EXPANDED_NODES} values` };
    } else if (isMap(node)) {
      open.add(node);
      for (const pair of node.items) n += size(pair.key) + size(pair.value);
      open.delete(node);
    } else if (isSeq(node)) {
      open.add(node);
      for (const item of node.items) n += size(item);
      open.delete(node);
    }
    n = Math.min(n, Number.MAX_SAFE_INTEGER);
    sizes.set(node, n);
    return n;
  };
  size(doc.contents);
  if (!culprit) return [];
  const { node, why } = culprit;
  return [`invalid YAML: ${why}${node.range ? lineAt(node.range[0]) : ''}`];
}

/** Where a path is written; each mapping's keys are indexed once, so lookups stay cheap. */
function lineFinder(
  doc: Document,
  lineAt: (offset: number) => string,
): (path: readonly (string | number)[]) => string {
  const index = new WeakMap<object, Map<string, Node>>();
  const child = (node: unknown, key: string | number): unknown => {
    if (isAlias(node)) return undefined;
    if (isSeq(node)) return typeof key === 'number' ? node.items[key] : undefined;
    if (!isMap(node)) return undefined;
    let keys = index.get(node);
    if (!keys) {
      keys = new Map();
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (k !== undefined && !keys.has(k) && isNode(pair.key)) {
          keys.set(k, isNode(pair.value) ? pair.value : pair.key);
        }
      }
      index.set(node, keys);
    }
    return keys.get(String(key));
  };
  return (path) => {
    let node: unknown = doc.contents;
    let found: Node | undefined = isNode(node) ? node : undefined;
    for (const part of path) {
      node = child(node, part);
      if (!isNode(node)) break;
      found = node;
    }
    return found?.range ? lineAt(found.range[0]) : '';
  };
}
