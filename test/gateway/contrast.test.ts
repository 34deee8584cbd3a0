import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { STYLESHEET } from '../../src/gateway/http/pages.js';
import { colourPairs, contrast, parseColour, schemesOf, type ColourPair } from '../support/contrast.js';

// WCAG 2.x AA: text needs a contrast ratio of at least 4.5:1 with its background, in every
// colour scheme a page is shown in. Checked from the stylesheets themselves: the gateway's
// pages (light and dark: they declare `color-scheme: light dark`) and the admin page.

const ADMIN_CSS = readFileSync(new URL('../../src/admin/static/admin.css', import.meta.url), 'utf8');
const AA = 4.5;

const show = (p: ColourPair): string =>
  `${p.scheme} ${p.selector}: rgb(${p.text.join(' ')}) on rgb(${p.background.join(' ')}) = ${p.ratio.toFixed(2)}:1`;

function failing(css: string): string[] {
  return colourPairs(css)
    .filter((p) => p.ratio < AA)
    .map(show);
}

describe('the contrast computation', () => {
  it('matches known WCAG ratios', () => {
    const ratio = (a: string, b: string) =>
      Number(contrast(parseColour(a, 'light')!, parseColour(b, 'light')!).toFixed(2));
    assert.equal(ratio('#000', '#fff'), 21);
    assert.equal(ratio('#fff', '#fff'), 1);
    assert.equal(ratio('#777', '#fff'), 4.48);
    assert.equal(ratio('#b00020', '#121212'), 2.56);
    assert.equal(ratio('#767676', 'white'), 4.54);
  });

  it('fails the colours the gateway had: dark-mode error text and the grey footer', () => {
    const old = `:root { color-scheme: light dark; }
button { background: #1f5fbf; color: #fff; }
.error { color: #b00020; font-weight: 600; }
footer { margin-top: 2rem; color: #777; }`;
    assert.deepEqual(failing(old), [
      'light footer: rgb(119 119 119) on rgb(255 255 255) = 4.48:1',
      'dark .error: rgb(176 0 32) on rgb(18 18 18) = 2.56:1',
      'dark footer: rgb(119 119 119) on rgb(18 18 18) = 4.18:1',
    ]);
  });

  it('reads dark blocks, inherits from ancestor and element rules, and refuses colours it cannot read', () => {
    const css = `.bar { background: #1f3a5f; color: #fff; } .bar h1 { font-size: 2rem; background: none #222; }
button { background: #eee; } button.danger { color: #700; }
@media (prefers-color-scheme: dark) { button { background: #333; } }`;
    const pairs = colourPairs(css).map(
      (p) => `${p.scheme} ${p.selector} ${p.text.join(' ')}/${p.background.join(' ')}`,
    );
    assert.ok(pairs.includes('light .bar h1 255 255 255/34 34 34'));
    assert.ok(pairs.includes('light button.danger 119 0 0/238 238 238'));
    assert.ok(pairs.includes('dark button.danger 119 0 0/51 51 51'));
    assert.ok(pairs.includes('dark button 255 255 255/51 51 51'), 'the dark canvas text on the dark button');
    assert.throws(() => colourPairs('p { color: hsl(0 0% 50%); }'), /unsupported colour/);
  });
});

describe('the stylesheets meet WCAG AA (4.5:1) in every colour scheme', () => {
  it('the gateway pages, light and dark', () => {
    assert.deepEqual(schemesOf(STYLESHEET), ['light', 'dark']);
    assert.ok(colourPairs(STYLESHEET).length >= 8, 'the pairs were found');
    assert.deepEqual(failing(STYLESHEET), []);
  });

  it('the admin page', () => {
    assert.ok(colourPairs(ADMIN_CSS).length >= 8, 'the pairs were found');
    assert.deepEqual(failing(ADMIN_CSS), []);
  });
});
