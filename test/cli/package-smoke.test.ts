// The package as an operator gets it: `npm pack` (prepack builds dist/), the tarball installed
// with --omit=dev into an empty folder outside the checkout, and the installed command used
// from there: --version, init, a TypeScript rule importing 'sessiongate', check-config, serve,
// a logon and a proxied request, SIGTERM. No network: the install takes the versions of the
// checkout's package-lock.json from the npm cache that `npm ci` filled.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePort } from '../e2e/gateways.js';
import { ROOT } from './helpers.js';

const RUNS = 5;

interface PackageExports {
  exports: Record<string, { types: string; import: string }>;
}
const work = mkdtempSync(join(tmpdir(), 'sg-package-'));
const gw = join(work, 'gw');
const children = new Set<ReturnType<typeof spawn>>();
after(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(command: string, args: string[], cwd: string): Promise<Ran> {
  const started = performance.now();
  return new Promise((done) => {
    execFile(
      command,
      args,
      { cwd, env: { ...process.env, NODE_OPTIONS: '', SESSIONGATE_DEBUG: '' }, timeout: 240_000 },
      (err, stdout, stderr) =>
        done({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr, ms: performance.now() - started }),
    );
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sessiongate = (args: string[]) => run(join(work, 'node_modules/.bin/sessiongate'), args, work);

/**
 * An install of the tarball that resolves nothing on the network: the lock lists the runtime
 * packages of the checkout's lock (their integrity finds them in the npm cache) and the
 * tarball itself.
 */
function writeInstallProject(tarball: string): void {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; link?: boolean }>;
  };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  const dependencies = { sessiongate: `file:${tarball}` };
  const packages: Record<string, unknown> = { '': { name: 'operator', dependencies } };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path !== '' && !entry.dev && !entry.link) packages[path] = entry;
  }
  packages['node_modules/sessiongate'] = {
    version: pkg.version,
    resolved: `file:${tarball}`,
    dependencies: pkg.dependencies,
    bin: pkg.bin,
    engines: pkg.engines,
  };
  writeFileSync(
    join(work, 'package.json'),
    JSON.stringify({ name: 'operator', private: true, dependencies }),
  );
  writeFileSync(
    join(work, 'package-lock.json'),
    JSON.stringify({ name: 'operator', lockfileVersion: 3, requires: true, packages }),
  );
}

/** `serve` until its banner; the child and the time to the banner. */
async function startServe(
  port: number,
): Promise<{ child: ReturnType<typeof spawn>; ms: number; stderr: () => string }> {
  const started = performance.now();
  const child = spawn(
    join(work, 'node_modules/.bin/sessiongate'),
    ['serve', '--config', 'gw/sessiongate.yaml', '--port', String(port)],
    { cwd: work, env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  children.add(child);
  let stderr = '';
  const exited = once(child, 'exit');
  const listening = new Promise<void>((resolve) =>
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('listening on')) resolve();
    }),
  );
  await Promise.race([listening, exited]);
  assert.match(stderr, /listening on http:\/\/127\.0\.0\.1:/, stderr);
  return { child, ms: performance.now() - started, stderr: () => stderr };
}

async function stop(child: ReturnType<typeof spawn>): Promise<number | null> {
  const exited = once(child, 'exit') as Promise<[number | null]>;
  child.kill('SIGTERM');
  const [code] = await exited;
  children.delete(child);
  return code;
}

describe('the package', { timeout: 300_000 }, () => {
  it('packs, installs with --omit=dev outside the checkout, and runs from the operator folder', async (t) => {
    const packed = await run('npm', ['pack', '--silent', '--pack-destination', work], ROOT);
    assert.equal(packed.code, 0, packed.stderr);
    const tarball = join(work, packed.stdout.trim().split('\n').pop()!);
    writeInstallProject(tarball);
    // Install scripts off: better-sqlite3 would compile SQLite again (a minute or two); the
    // binding `npm ci` compiled in the checkout is the same version for the same Node.
    const installed = await run(
      'npm',
      ['ci', '--offline', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'],
      work,
    );
    assert.equal(installed.code, 0, installed.stderr);
    const binding = 'node_modules/better-sqlite3/build/Release';
    mkdirSync(join(work, binding), { recursive: true });
    copyFileSync(join(ROOT, binding, 'better_sqlite3.node'), join(work, binding, 'better_sqlite3.node'));

    const versions: Ran[] = [];
    for (let i = 0; i < RUNS; i++) versions.push(await sessiongate(['--version']));
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(versions[0]!.stdout, `${pkg.version}\n`, versions[0]!.stderr);
    const viaNpx = await run('npx', ['--offline', 'sessiongate', '--version'], work);
    assert.equal(viaNpx.stdout, `${pkg.version}\n`, viaNpx.stderr);

    // Every export resolves in the installed package, to a module and its declaration file.
    const exportsMap = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageExports)
      .exports;
    for (const [subpath, target] of Object.entries(exportsMap)) {
      const specifier = subpath === '.' ? 'sessiongate' : `sessiongate/${subpath.slice(2)}`;
      const loaded = await run(
        process.execPath,
        ['--input-type=module', '-e', `await import('${specifier}')`],
        work,
      );
      assert.equal(loaded.code, 0, `${specifier}: ${loaded.stderr}`);
      assert.ok(
        existsSync(join(work, 'node_modules/sessiongate', target.types)),
        `${specifier}: ${target.types}`,
      );
    }

    const init = await sessiongate(['init', 'gw']);
    assert.equal(init.code, 0, init.stderr);
    const password = /password:\s+(\S+)/.exec(init.stdout + init.stderr)?.[1];
    assert.ok(password, init.stdout + init.stderr);
    mkdirSync(join(gw, 'rules'));
    writeFileSync(
      join(gw, 'rules/x-smoke.ts'),
      `import { defineRules, type RuleContext } from 'sessiongate';
const header: string = 'X-Smoke';
export default defineRules({
  async ACCESS_ACL_ALLOWED(ctx: RuleContext) {
    ctx.http.headers.insert(header, (await ctx.session.data.get('session.logon.last.username')) ?? '');
  },
});
`,
    );
    writeFileSync(
      join(gw, 'rules/plain.js'),
      `import { defineRules } from 'sessiongate';\nexport default defineRules({});\n`,
    );
    const config = readFileSync(join(gw, 'sessiongate.yaml'), 'utf8');
    const withRule = config
      .replace(/^admin:\n {2}enabled: true/m, 'admin:\n  enabled: false')
      .replace(/^rules: \[\]/m, 'rules: [ ./rules/x-smoke.ts ]');
    assert.notEqual(withRule, config);
    writeFileSync(join(gw, 'sessiongate.yaml'), withRule);
    const checked = await sessiongate(['check-config', 'gw/sessiongate.yaml']);
    assert.equal(checked.code, 0, checked.stderr);

    // JavaScript rules need no TypeScript loader: they load with tsx taken away.
    writeFileSync(join(gw, 'js-only.yaml'), withRule.replace('./rules/x-smoke.ts', './rules/plain.js'));
    renameSync(join(work, 'node_modules/tsx'), join(work, 'node_modules/tsx.away'));
    try {
      const jsOnly = await sessiongate(['check-config', 'gw/js-only.yaml']);
      assert.equal(jsOnly.code, 0, jsOnly.stderr);
      const tsWithout = await sessiongate(['check-config', 'gw/sessiongate.yaml']);
      assert.equal(tsWithout.code, 2, 'the TypeScript rule needs tsx: the check is real');
    } finally {
      renameSync(join(work, 'node_modules/tsx.away'), join(work, 'node_modules/tsx'));
    }

    const port = await freePort();
    const starts: number[] = [];
    for (let i = 0; i < RUNS - 1; i++) {
      const s = await startServe(port);
      starts.push(s.ms);
      assert.equal(await stop(s.child), 0, s.stderr());
    }
    const served = await startServe(port);
    starts.push(served.ms);
    const base = `http://127.0.0.1:${port}`;
    const html = { accept: 'text/html' };
    const first = await fetch(`${base}/`, { headers: html, redirect: 'manual' });
    const cookie = first.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    const logon = await fetch(`${base}/sg/logon`, {
      method: 'POST',
      redirect: 'manual',
      body: new URLSearchParams({ username: 'admin', password }).toString(),
      headers: { ...html, cookie, origin: base, 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(logon.status, 302, await logon.text());
    const session =
      logon.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ') || cookie;
    const proxied = await fetch(`${base}/`, { headers: { ...html, cookie: session }, redirect: 'manual' });
    const page = await proxied.text();
    assert.equal(proxied.status, 200, page);
    assert.match(page, /x-smoke/i, 'the demo upstream shows the header the TypeScript rule added');
    assert.match(page, /admin/);
    assert.equal(await stop(served.child), 0, served.stderr());

    t.diagnostic(
      `median of ${RUNS}: sessiongate --version ${Math.round(median(versions.map((v) => v.ms)))} ms ` +
        `(npx ${Math.round(viaNpx.ms)} ms once); serve to its banner ${Math.round(median(starts))} ms; ` +
        `pack ${Math.round(packed.ms)} ms, install ${Math.round(installed.ms)} ms`,
    );
  });
});
