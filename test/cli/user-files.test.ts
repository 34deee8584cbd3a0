// Rule and plugin files in an operator's own folder (no package.json, outside the checkout),
// importing 'sessiongate' as docs/rules.md and docs/plugins.md show: check-config loads them as
// serve does, and a file that does not load is one problem at its line of the configuration.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BIN, tempDir, type Run } from './helpers.js';

/** The real CLI in a child process; stderr kept whole (a bad config lists several lines). */
function sessiongate(args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, SESSIONGATE_DEBUG: '', NODE_OPTIONS: '' }, timeout: 30_000 },
      (err, stdout, stderr) => done({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const HEAD = `listen: { host: 127.0.0.1, port: 0 }
store: memory
keys: ./var/keyring.json
admin: { enabled: false }
`;

const TS_RULE = `import { defineRules, type RuleContext } from 'sessiongate';
const header: string = 'X-From-Rule';
export default defineRules({
  ACCESS_ACL_ALLOWED(ctx: RuleContext) { ctx.http.headers.insert(header, 'ts'); },
});
`;

// Plain JavaScript with import syntax in a folder without package.json.
const JS_RULE = `import { defineRules } from 'sessiongate';
export default defineRules({ HTTP_REQUEST() {} });
`;

const TS_PLUGIN = `import { definePlugin } from 'sessiongate';
export default definePlugin({ kind: 'aa', authenticate: () => ({ result: 'failure' }) });
`;

/** `serve` in `dir` until its banner (or its exit), then SIGTERM: the banner, or stderr when it failed. */
async function serveUntilListening(dir: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', 'sessiongate.yaml'], {
    cwd: dir,
    env: { ...process.env, SESSIONGATE_DEBUG: '', NODE_OPTIONS: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = once(child, 'exit');
  const listening = new Promise<void>((resolve) =>
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('listening on')) resolve();
    }),
  );
  await Promise.race([listening, exited]);
  child.kill('SIGTERM');
  await exited;
  return stderr;
}

/** A folder of the operator's: gw/ with the config, rules/ and plugins/ beside it. */
function operatorFolder(files: Record<string, string>): string {
  const dir = join(tempDir(), 'gw');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

describe('rule and plugin files of the operator', () => {
  it("load from a folder without package.json, importing 'sessiongate'", async () => {
    const dir = operatorFolder({
      'rules/x-from-rule.ts': TS_RULE,
      'rules/plain.js': JS_RULE,
      'plugins/deny.ts': TS_PLUGIN,
      'sessiongate.yaml': `${HEAD}plugins:
  - { name: deny, runtime: module, path: ./plugins/deny.ts }
rules: [ ./rules/x-from-rule.ts, ./rules/plain.js ]
routes:
  - { match: { path: / }, upstream: demo }
`,
    });
    const r = await sessiongate(['check-config', 'sessiongate.yaml'], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sessiongate\.yaml: ok/);
    const banner = await serveUntilListening(dir);
    assert.match(banner, /listening on http:\/\/127\.0\.0\.1:\d+/);
  });

  it("means the running gateway by 'sessiongate', even beside a package.json and another copy in node_modules", async () => {
    const dir = operatorFolder({
      'package.json': JSON.stringify({ name: 'my-gateway', type: 'module' }),
      'node_modules/sessiongate/package.json': JSON.stringify({
        name: 'sessiongate',
        type: 'module',
        exports: './index.js',
      }),
      'node_modules/sessiongate/index.js':
        "export function defineRules() { throw new Error('not the running gateway'); }\n" +
        "export function definePlugin() { throw new Error('not the running gateway'); }\n",
      'rules/x-from-rule.ts': TS_RULE,
      'plugins/deny.ts': TS_PLUGIN,
      'sessiongate.yaml': `${HEAD}plugins:
  - { name: deny, runtime: module, path: ./plugins/deny.ts }
rules: [ ./rules/x-from-rule.ts ]
routes:
  - { match: { path: / }, upstream: demo }
`,
    });
    const r = await sessiongate(['check-config', 'sessiongate.yaml'], dir);
    assert.equal(r.code, 0, r.stderr);
  });

  it('a file that does not load: FILE: rules.N / plugins.N.path: message (config line), exit 2, at check-config and at serve', async () => {
    const dir = operatorFolder({
      'rules/ok.ts': TS_RULE,
      'rules/missing.ts': `import { nothing } from 'no-such-package-here';\nexport default nothing;\n`,
      'rules/syntax.ts': `export default {\n  HTTP_REQUEST( {\n};\n`,
      'rules/throws.ts': `const a = 1;\nthrow new Error('rule refuses to load');\n`,
      'plugins/bad.ts': `export default { kind: 'nothing' };\n`,
      'sessiongate.yaml': `${HEAD}plugins:
  - { name: bad, runtime: module, path: ./plugins/bad.ts }
rules:
  - ./rules/ok.ts
  - ./rules/missing.ts
routes:
  - match: { path: / }
    upstream: demo
    rules: [ ./rules/syntax.ts, ./rules/throws.ts ]
`,
    });
    const want = [
      /^ {2}sessiongate\.yaml: plugins\.0\.path: \.\/plugins\/bad\.ts: the default export must be definePlugin\(.*\) \(line 6\)$/,
      /^ {2}sessiongate\.yaml: rules\.1: \.\/rules\/missing\.ts: Cannot find package 'no-such-package-here'.* \(line 9\)$/,
      /^ {2}sessiongate\.yaml: routes\.0\.rules\.0: \.\/rules\/syntax\.ts: line 3:\d+: .* \(line 13\)$/,
      /^ {2}sessiongate\.yaml: routes\.0\.rules\.1: \.\/rules\/throws\.ts: line 2: rule refuses to load \(line 13\)$/,
    ];
    for (const command of [
      ['check-config', 'sessiongate.yaml'],
      ['serve', '--config', 'sessiongate.yaml'],
    ]) {
      const r = await sessiongate(command, dir);
      assert.equal(r.code, 2, `${command[0]}: ${r.stderr}`);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines[0], 'sessiongate: sessiongate.yaml: the configuration has 4 problem(s):', r.stderr);
      for (const [i, pattern] of want.entries())
        assert.match(lines[i + 1] ?? '', pattern, `${command[0]}:\n${r.stderr}`);
      assert.equal(lines.length, 5, r.stderr);
      assert.doesNotMatch(r.stderr, /node:internal|\s+at /, 'no internal place, no stack');
    }
  });
});
