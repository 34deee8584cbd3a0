import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/gateway/config/load.js';
import { BIN, tempDir } from './helpers.js';

// What check-config accepts, serve starts with: one validation for both (real CLI processes).

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, SESSIONGATE_DEBUG: '', NODE_OPTIONS: '' }, timeout: 30_000 },
      (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
    );
  });
}

const SECTIONS: Record<string, string> = {
  listen: 'listen: { host: 127.0.0.1, port: 0 }',
  admin: 'admin: { enabled: false }',
  store: 'store: memory',
  routes: 'routes:\n  - { upstream: demo }',
};
/** The base config with some top-level sections replaced. */
const withSections = (replaced: Record<string, string> = {}): string[] =>
  Object.entries({ ...SECTIONS, ...replaced }).map(([, text]) => text);
const BASE = withSections();

function configFile(lines: string[]): { dir: string; file: string } {
  const dir = tempDir();
  writeFileSync(join(dir, 'gw.yaml'), `${lines.join('\n')}\n`);
  return { dir, file: 'gw.yaml' };
}

/** Exit 2; every line of stderr names the file; no stack frame; `expected` among the lines. */
function assertRefused(r: Run, expected: RegExp): void {
  assert.equal(r.code, 2, `exit code, stderr:\n${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0);
  for (const l of lines) {
    assert.match(l, /^(sessiongate: gw\.yaml: | {2}gw\.yaml: )/, `line without the file: ${l}`);
    assert.doesNotMatch(l, /^\s+at /);
  }
  assert.ok(
    lines.some((l) => expected.test(l)),
    `no line matches ${String(expected)}:\n${r.stderr}`,
  );
}

describe('check-config and serve: one validation', () => {
  const refusedByBoth: [string, Record<string, string>, RegExp][] = [
    ['a store of no known kind', { store: 'store: demo2' }, /store: .*unknown store.*\(line \d+\)/],
    ['a store with a NUL first', { store: 'store: "\\0sqlite:./x.db"' }, /store: .*unknown store/],
    ['a file: URL as store', { store: 'store: file:///etc/passwd' }, /store: .*unknown store/],
    ['a redis URL without host, port 99999', { store: 'store: "redis://:@:99999"' }, /store: .*redis/],
    ['a redis port out of range', { store: 'store: redis://127.0.0.1:99999' }, /store: .*port/],
    [
      'an upstream port out of range',
      { routes: 'routes:\n  - { upstream: "http://127.0.0.1:99999" }' },
      /routes\.0\.upstream: .*\(line \d+\)/,
    ],
    ['a CIDR with two prefixes', { trusted: 'trusted_proxies: [1.2.3.4/8/8]' }, /trusted_proxies\.0: /],
    ['an IPv6 zone id', { trusted: 'trusted_proxies: ["fe80::1%eth0"]' }, /trusted_proxies\.0: /],
    [
      'an admin token file name longer than a file system name (the config campaign found it)',
      { admin: `admin: { port: 0, token_file: ./${'a'.repeat(300)} }` },
      /admin\.token_file: .*too long.*\(line \d+\)/,
    ],
    [
      'a key ring path longer than a path',
      { keys: `keys: ./${'k/'.repeat(2100)}ring.json` },
      /keys: .*too long/,
    ],
  ];
  for (const [what, sections, expected] of refusedByBoth) {
    it(`${what}: check-config and serve both refuse it (exit 2, file, path, line)`, async () => {
      const { dir, file } = configFile(withSections(sections));
      assertRefused(await cli(['check-config', file], dir), expected);
      assertRefused(await cli(['serve', '--config', file, '--port', '0'], dir), expected);
    });
  }

  it('a YAML alias bomb: exit 2, names the file and the line', async () => {
    const levels = 'abcdefghi'.split('');
    const lines = levels.map((name, i) =>
      i === 0
        ? `${name}: &${name} [x, x, x, x, x, x, x, x, x]`
        : `${name}: &${name} [${Array(9)
            .fill(`*${levels[i - 1]!}`)
            .join(', ')}]`,
    );
    const { dir, file } = configFile([...BASE, ...lines]);
    assertRefused(await cli(['check-config', file], dir), /alias.*\(line \d+\)/);
  });

  it('a file over the size limit is refused at once (exit 2, one line naming the file)', async () => {
    const { dir, file } = configFile([...BASE, `# ${'x'.repeat(1024 * 1024)}`]);
    const r = await cli(['check-config', file], dir);
    assertRefused(r, /larger than/);
  });

  it('a key written twice is a problem with its line', () => {
    assert.throws(
      () => parseConfig([...BASE, 'store: memory'].join('\n'), 'gw.yaml', '/tmp'),
      (err: { problems?: string[] }) =>
        err.problems?.some((p) => /unique: store is written twice \(line 6\)/.test(p)) === true,
    );
  });

  it('many aliases are refused at once with the line of the first one too many', () => {
    const aliases = Array.from({ length: 20_000 }, (_, i) => `      a${i + 1}: *a`);
    const text = [...BASE, 'profiles:', '  default:', '    settings:', '      a0: &a x', ...aliases].join(
      '\n',
    );
    const t = performance.now();
    assert.throws(
      () => parseConfig(text, 'gw.yaml', '/tmp'),
      (err: { problems?: string[] }) =>
        err.problems?.some((p) => /more than 1000 aliases in one file \(line 1010\)/.test(p)) === true,
    );
    assert.ok(performance.now() - t < 5000, 'refused at once');
  });

  it('checking time grows linearly with the keys of a mapping', () => {
    const file = (n: number) => {
      const keys = Array.from({ length: n }, (_, i) => `      k${i}: v${i}`);
      return [...BASE, 'profiles:', '  default:', '    settings:', ...keys].join('\n');
    };
    // Best of three, so that a busy machine does not decide; quadratic growth gives 16x.
    const time = (n: number) => {
      const text = file(n);
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        parseConfig(text, 'gw.yaml', '/tmp');
        best = Math.min(best, performance.now() - t);
      }
      return best;
    };
    time(2000); // warm up
    const small = time(5000);
    const large = time(20_000);
    assert.ok(
      large / small < 8,
      `20,000 keys took ${large.toFixed(0)} ms, 5,000 took ${small.toFixed(0)} ms`,
    );
  });
});
