// WCAG 2.x contrast of a stylesheet's text: parses the rules (and the
// `prefers-color-scheme` media blocks), works out the text colour and the background each rule
// draws on in each colour scheme, and computes the contrast ratio of every pair.

/** An sRGB colour, channels 0-255. */
export type Rgb = readonly [number, number, number];

export type Scheme = 'light' | 'dark';

/** One text colour on one background, where it comes from, and its contrast ratio. */
export interface ColourPair {
  scheme: Scheme;
  selector: string;
  text: Rgb;
  background: Rgb;
  ratio: number;
}

interface Rule {
  selector: string;
  decls: Map<string, string>;
  /** undefined: applies in both schemes. */
  scheme?: Scheme;
}

/**
 * Chromium's system colours: the page's canvas and text, and links, in each scheme (a page
 * that declares `color-scheme: light dark` gets the dark ones under a dark preference).
 */
const SYSTEM: Record<Scheme, { canvas: Rgb; text: Rgb; link: Rgb }> = {
  light: { canvas: [255, 255, 255], text: [0, 0, 0], link: [0, 0, 238] },
  dark: { canvas: [18, 18, 18], text: [255, 255, 255], link: [158, 158, 255] },
};

const NAMED: Record<string, Rgb> = { white: [255, 255, 255], black: [0, 0, 0] };
const ROOTS = [':root', 'html', 'body'];

/** Relative luminance (WCAG 2.x, sRGB). */
export function luminance([r, g, b]: Rgb): number {
  const lin = (c: number): number => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** Contrast ratio (L1 + 0.05) / (L2 + 0.05), 1 to 21. */
export function contrast(a: Rgb, b: Rgb): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/**
 * A colour value: #rgb, #rrggbb, rgb(r g b) / rgb(r, g, b), white, black; 'transparent' and
 * 'inherit' give undefined (the parent's). Anything else throws, so a colour this parser does
 * not know fails the test instead of escaping it.
 */
export function parseColour(value: string, scheme: Scheme): Rgb | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'transparent' || v === 'inherit' || v === 'currentcolor') return undefined;
  if (v === 'canvas') return SYSTEM[scheme].canvas;
  if (v === 'canvastext') return SYSTEM[scheme].text;
  if (NAMED[v]) return NAMED[v];
  const hex = /^#([0-9a-f]{3}|[0-9a-f]{6})$/.exec(v);
  if (hex) {
    const h = hex[1]!.length === 3 ? [...hex[1]!].map((c) => c + c).join('') : hex[1]!;
    return [0, 2, 4].map((i) => parseInt(h.slice(i, i + 2), 16)) as unknown as Rgb;
  }
  const rgb = /^rgb\(\s*(\d+)[\s,]+(\d+)[\s,]+(\d+)\s*\)$/.exec(v);
  if (rgb) return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
  throw new Error(`unsupported colour ${JSON.stringify(value)}`);
}

/** The colour in a `background` shorthand (its first colour-looking part), if any. */
function backgroundColour(value: string, scheme: Scheme): Rgb | undefined {
  for (const part of value.replace(/url\([^)]*\)/g, '').split(/\s+(?![^(]*\))/)) {
    if (/^(#|rgb\(|white$|black$|transparent$|canvas)/i.test(part)) return parseColour(part, scheme);
  }
  return undefined;
}

/** The rules of a stylesheet; those in a `prefers-color-scheme` block carry its scheme. */
export function parseRules(css: string): Rule[] {
  const text = css.replace(/\/\*[\s\S]*?\*\//g, '');
  const rules: Rule[] = [];
  let i = 0;
  while (i < text.length) {
    const open = text.indexOf('{', i);
    if (open < 0) break;
    const head = text.slice(i, open).trim();
    if (head.startsWith('@')) {
      const close = matching(text, open);
      const scheme = /prefers-color-scheme:\s*(light|dark)/.exec(head)?.[1] as Scheme | undefined;
      for (const r of parseRules(text.slice(open + 1, close)))
        rules.push({ ...r, ...(scheme ? { scheme } : {}) });
      i = close + 1;
      continue;
    }
    const close = text.indexOf('}', open);
    const decls = new Map<string, string>();
    for (const d of text.slice(open + 1, close).split(';')) {
      const colon = d.indexOf(':');
      if (colon > 0) decls.set(d.slice(0, colon).trim().toLowerCase(), d.slice(colon + 1).trim());
    }
    for (const selector of head.split(','))
      rules.push({ selector: selector.trim().replace(/\s+/g, ' '), decls });
    i = close + 1;
  }
  return rules;
}

function matching(text: string, open: number): number {
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    if (text[j] === '{') depth++;
    else if (text[j] === '}' && --depth === 0) return j;
  }
  throw new Error('unbalanced braces in the stylesheet');
}

/** The schemes a stylesheet is shown in: dark too when it opts in (color-scheme or a dark block). */
export function schemesOf(css: string): Scheme[] {
  const rules = parseRules(css);
  const dark = rules.some(
    (r) =>
      r.scheme === 'dark' ||
      (ROOTS.includes(r.selector) && /\bdark\b/.test(r.decls.get('color-scheme') ?? '')),
  );
  return dark ? ['light', 'dark'] : ['light'];
}

/**
 * Every text colour / background pair of the stylesheet in each of its schemes: the page's own
 * (root) pair, links on the page, and each rule that sets a colour or a background. A rule
 * without one of them takes it from the rule of its ancestor selector (`.bar h1` from `.bar`),
 * else from its element's rule (`button.danger` from `button`), else from the page.
 */
export function colourPairs(css: string): ColourPair[] {
  const rules = parseRules(css);
  const pairs: ColourPair[] = [];
  for (const scheme of schemesOf(css)) {
    const decls = new Map<string, Map<string, string>>();
    for (const r of rules) {
      if (r.scheme && r.scheme !== scheme) continue;
      decls.set(r.selector, new Map([...(decls.get(r.selector) ?? []), ...r.decls]));
    }
    const own = (sel: string, prop: 'color' | 'background'): Rgb | undefined => {
      const d = decls.get(sel);
      if (prop === 'color') return d?.has('color') ? parseColour(d.get('color')!, scheme) : undefined;
      const bg = d?.get('background-color') ?? d?.get('background');
      return bg === undefined ? undefined : backgroundColour(bg, scheme);
    };
    const root = (prop: 'color' | 'background'): Rgb =>
      ROOTS.map((s) => own(s, prop)).find(Boolean) ??
      (prop === 'color' ? SYSTEM[scheme].text : SYSTEM[scheme].canvas);
    const resolve = (sel: string, prop: 'color' | 'background'): Rgb => {
      const mine = own(sel, prop);
      if (mine) return mine;
      const up = parentOf(sel, decls);
      return up === undefined ? root(prop) : resolve(up, prop);
    };
    const add = (selector: string, text: Rgb, background: Rgb): void =>
      void pairs.push({ scheme, selector, text, background, ratio: contrast(text, background) });
    add(':root', root('color'), root('background'));
    if (!decls.get('a')?.has('color')) add('a (browser default)', SYSTEM[scheme].link, root('background'));
    for (const [sel, d] of decls) {
      if (ROOTS.includes(sel)) continue;
      if (!d.has('color') && !d.has('background') && !d.has('background-color')) continue;
      add(sel, resolve(sel, 'color'), resolve(sel, 'background'));
    }
  }
  return pairs;
}

/** The nearest selector with a rule that `sel` inherits from, if any. */
function parentOf(sel: string, decls: Map<string, unknown>): string | undefined {
  const parts = sel.split(/\s*[ >+~]\s*/);
  // A compound (`button.danger`, `tbody tr.selected`): first its element's rule.
  const last = parts.at(-1) ?? '';
  const element = /^[a-z][a-z0-9]*/.exec(last)?.[0];
  const ancestors = parts.slice(0, -1);
  if (element && element !== last) {
    const same = [...ancestors, element].join(' ');
    if (decls.has(same)) return same;
  }
  for (let n = ancestors.length; n > 0; n--) {
    const up = ancestors.slice(0, n).join(' ');
    if (decls.has(up)) return up;
  }
  return undefined;
}
