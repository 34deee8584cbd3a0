// The configuration campaign: seeded mutations of valid configuration files (the one `init`
// writes, the quickstart's, one with an LDAP plugin holding a password, and one with the SSH
// gateway, OpenID Connect, TOTP self-enrolment, bearer and step-up routes), each through
// `check-config`. Each must end in exit 0, or exit 2 with every line naming the file, no stack
// frame and no secret; and `serve` must start with what check-config accepted.
// Short by default; FUZZ_FULL=1 for the full size (FUZZ_CONFIG_CASES overrides the count).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN, ROOT, runCli, tempDir, type Run } from './helpers.js';
import { mutate, Random, SECRET } from './config-mutations.js';

const FULL = process.env.FUZZ_FULL === '1';
const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const CASES = Number(process.env.FUZZ_CONFIG_CASES ?? (FULL ? 2500 : 300));
/** Real `check-config` processes: every Nth case (their answer must equal the in-process one). */
const SPAWN_EVERY = FULL ? 10 : 75;
/** Accepted cases that also run `serve` (all of them when the number is large enough). */
const SERVE_SAMPLE = Number(process.env.FUZZ_CONFIG_SERVE ?? (FULL ? 300 : 3));
/** What a start may fail on that no file check can know: ports taken, servers that do not answer. */
const RUNTIME_FACT =
  /EADDRINUSE|address already in use|ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EADDRNOTAVAIL|SG_ERR_STORE_UNAVAILABLE|redis/i;

const children = new Set<ReturnType<typeof spawn>>();
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/**
 * `init`'s file with the access features on: trusted proxies (forward-auth), TOTP self-enrolment,
 * a credential store, an OpenID Connect provider whose client secret file holds SECRET, a bearer
 * route, a step-up route, and the SSH gateway (init's commented section, on a free port).
 */
function accessBase(initText: string, dir: string): string {
  writeFileSync(join(dir, 'oidc-secret'), `${SECRET}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'var/credentials.json'), '{}\n', { mode: 0o600 });
  writeFileSync(join(dir, 'var/known_hosts'), '');
  const sso = [
    '  - { name: otp, runtime: builtin, type: totp, config: { users_file: ./var/users.yaml, self_enrolment: true } }',
    '  - { name: vault, runtime: builtin, type: file-credentials, config: { credentials_file: ./var/credentials.json } }',
    '  - name: sso',
    '    runtime: builtin',
    '    type: oidc',
    '    timeout_ms: 15000',
    '    config:',
    '      issuer: http://127.0.0.1:1/realms/corp',
    '      allow_insecure_http: true',
    '      client_id: sessiongate',
    '      client_secret_file: ./oidc-secret',
    '      redirect_uri: http://127.0.0.1:8080/sg/oidc/callback',
    '      end_session_redirect: http://127.0.0.1:8080/',
    '      scopes: [openid, email, profile]',
    '      groups_claim: groups',
    '      email_domains: [example.org]',
    '      required_claims: { tid: corp }',
    '      claims: { session.oauth.custom.team: team }',
    '      refresh_before_seconds: 60',
  ].join('\n');
  const profiles = [
    '  sso:',
    '    policy: [ { authenticate: sso }, allow ]',
    '    identity_headers: { X-USERNAME: session.logon.last.username, X-Groups: session.logon.last.groups }',
    '  admins:',
    '    policy: [ logon, { authenticate: users }, { authenticate: otp }, allow ]',
  ].join('\n');
  const routes = [
    '  - { match: { path: /api }, upstream: demo, profile: sso, pass_access_token: true, bearer: { plugin: sso, audience: https://api.example.org } }',
    '  - { match: { path: /admin }, upstream: demo, profile: admins, reauth_within: 300, acl: { groups: [admins] } }',
  ].join('\n');
  const ssh = /^# ssh:\n(?:#.*\n)+/m.exec(initText)?.[0] ?? '';
  assert.ok(ssh.includes('port: 2222'), "init's file shows the ssh section");
  const sshOn = ssh
    .split('\n')
    .map((l) => l.replace(/^# ?/, ''))
    .join('\n')
    .replace('port: 2222', 'port: 0')
    .replace('profile: default', 'profile: admins');
  return initText
    .replace('trusted_proxies: []', 'trusted_proxies: [127.0.0.1, 10.0.0.0/8]')
    .replace(/^( {6}users_file: \.\/var\/users\.yaml\n)/m, `$1${sso}\n`)
    .replace(/^( {4}identity_assertion: false\n)/m, `$1${profiles}\n`)
    .replace(/^(# Event rules for every route)/m, `${routes}\n\n$1`)
    .replace(ssh, sshOn);
}

/** The four starting files, written into one folder that also holds `init`'s key ring and users. */
async function bases(dir: string): Promise<{ name: string; text: string }[]> {
  const init = await runCli(['init', dir], dir);
  assert.equal(init.code, 0, init.stderr);
  const noAdminPort = (t: string) => t.replace(/^( {2}port: )8081/m, '$10').replace(/port: 8081/, 'port: 0');
  const initText = noAdminPort(readFileSync(join(dir, 'sessiongate.yaml'), 'utf8'));
  // The quickstart's paths are ../../var: from DIR/q/s/ they reach DIR/var.
  const quick = noAdminPort(readFileSync(join(ROOT, 'examples/quickstart/sessiongate.yaml'), 'utf8'));
  const ldap = `${initText}\n`.replace(
    /^plugins:\n/m,
    'plugins:\n  - name: dir\n    runtime: builtin\n    type: ldap\n    config:\n' +
      `      url: ldap://127.0.0.1:1\n      search_base: dc=example,dc=org\n      bind_dn: cn=svc\n      bind_password: ${SECRET}\n`,
  );
  mkdirSync(join(dir, 'q/s'), { recursive: true });
  return [
    { name: 'init', text: initText },
    { name: 'q/s/quickstart', text: quick },
    { name: 'ldap', text: ldap },
    { name: 'access', text: accessBase(initText, dir) },
  ];
}

function spawnRun(args: string[], cwd: string): Promise<Run> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, SESSIONGATE_DEBUG: '' }, timeout: 60_000 },
      (err, stdout, stderr) => {
        // Not an exit code (a timeout kill, a signal, a spawn error): say which, for the report.
        const why =
          err && typeof err.code !== 'number'
            ? `[process: code ${String(err.code)}, signal ${String(err.signal)}, killed ${String(err.killed)}]`
            : '';
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr: stderr + why });
      },
    );
  });
}

/** Exit 0, or exit 2 with each line naming the file; never a stack frame or the secret. */
function assertClean(r: Run, file: string, text: string): void {
  const show = () => `file ${file}:\n${text.slice(0, 2000)}\n--- stderr:\n${r.stderr.slice(0, 2000)}`;
  assert.ok(r.code === 0 || r.code === 2, `exit ${r.code}\n${show()}`);
  assert.ok(!r.stderr.includes(SECRET) && !r.stdout.includes(SECRET), `secret in the output\n${show()}`);
  if (r.code === 0) return;
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0, show());
  for (const l of lines) {
    assert.ok(
      l.startsWith(`sessiongate: ${file}: `) || l.startsWith(`  ${file}: `),
      `line without the file: ${l}\n${show()}`,
    );
    assert.doesNotMatch(l, /^\s+at |\bat .*\(.*:\d+:\d+\)/, show());
  }
}

/** Start serve on free ports, wait for it to listen, stop it: 'started' or 'runtime: LINE'. */
function serveOnce(file: string, cwd: string): Promise<{ outcome: string; stderr: string }> {
  return new Promise((done) => {
    const proc = spawn(
      process.execPath,
      [BIN, 'serve', '--config', file, '--port', '0', '--semi-space-mb', '0', '--memory-reducer'],
      {
        cwd,
        env: { ...process.env, SESSIONGATE_DEBUG: '', NODE_OPTIONS: '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    children.add(proc);
    let stderr = '';
    let listening = false;
    let timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!listening && /listening on http/.test(stderr)) {
        listening = true;
        // The stop gets its own time: a start on a busy machine may have used most of it.
        clearTimeout(timer);
        timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
        proc.kill('SIGTERM');
      }
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(proc);
      if (listening && code === 0) done({ outcome: 'started', stderr });
      // Started, but the stop did not end within 30 s (our SIGKILL): counted apart.
      else if (listening && signal === 'SIGKILL') done({ outcome: 'started, stop not within 30 s', stderr });
      // Any other end of a stop (a signal's default action, an exit code) is a defect.
      else if (listening) done({ outcome: `stop failed (exit ${code}, signal ${signal})`, stderr });
      else if (!listening && RUNTIME_FACT.test(stderr)) done({ outcome: 'runtime', stderr });
      else done({ outcome: `failed (exit ${code})`, stderr });
    });
  });
}

describe(`config campaign (seed ${SEED}, ${CASES} cases)`, () => {
  it(
    'check-config exits 0 or cleanly 2, and serve starts with what it accepts',
    { timeout: FULL ? 7_200_000 : 120_000 },
    async () => {
      const started = performance.now();
      const dir = tempDir();
      const sources = await bases(dir);
      for (const base of sources) {
        writeFileSync(join(dir, `${base.name}-base.yaml`), base.text);
        const run = await runCli(['check-config', `${base.name}-base.yaml`], dir);
        assert.equal(run.code, 0, `the ${base.name} file as it starts:\n${run.stderr}`);
      }
      const r = new Random(SEED);
      const counts: Record<string, number> = {};
      const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1);
      const accepted: { file: string; text: string }[] = [];
      let spawned = 0;
      for (let i = 0; i < CASES; i++) {
        const base = r.pick(sources);
        const { text, kind } = mutate(r, base.text);
        const file = `${base.name}-case.yaml`;
        writeFileSync(join(dir, file), text);
        const run = await runCli(['check-config', file], dir, { SESSIONGATE_DEBUG: '' });
        assertClean(run, file, text);
        count(`${kind}: exit ${run.code}`);
        if (i % SPAWN_EVERY === 0) {
          const real = await spawnRun(['check-config', file], dir);
          spawned++;
          assertClean(real, file, text);
          assert.deepEqual(
            [real.code, real.stderr, real.stdout],
            [run.code, run.stderr, run.stdout],
            `process and in-process differ for ${file}:\n${text.slice(0, 2000)}`,
          );
        }
        if (run.code === 0) {
          const kept = `accepted-${accepted.length}-${base.name.replaceAll('/', '_')}.yaml`;
          const keptPath = base.name.includes('/') ? join('q/s', kept) : kept;
          writeFileSync(join(dir, keptPath), text);
          accepted.push({ file: keptPath, text });
        }
      }
      // Serve for an evenly spread sample of the accepted cases (all when the sample is large).
      const serveCounts: Record<string, number> = {};
      const sample = Math.min(SERVE_SAMPLE, accepted.length);
      for (let k = 0; k < sample; k++) {
        const c = accepted[Math.floor((k * accepted.length) / sample)]!;
        const { outcome, stderr } = await serveOnce(c.file, dir);
        serveCounts[outcome] = (serveCounts[outcome] ?? 0) + 1;
        assert.ok(!stderr.includes(SECRET), `secret in serve's output for ${c.file}`);
        assert.ok(
          outcome.startsWith('started') || outcome === 'runtime',
          `serve ${outcome} with a config check-config accepted (${c.file}):\n${c.text.slice(0, 3000)}\n--- stderr:\n${stderr.slice(0, 2000)}`,
        );
      }
      const figures = {
        campaign: 'config',
        seed: SEED,
        cases: CASES,
        checked:
          'check-config in process for every case: exit 0, or exit 2 with every stderr line naming the file, no stack frame, no secret; ' +
          `a real check-config process for every ${SPAWN_EVERY}th case (same answer); serve started and stopped for a spread sample of the accepted cases`,
        check_config_outcomes: counts,
        check_config_processes: spawned,
        accepted: accepted.length,
        serve_sample: Object.values(serveCounts).reduce((a, b) => a + b, 0),
        serve_outcomes: serveCounts,
        duration_ms: Math.round(performance.now() - started),
        peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      };
      console.log(JSON.stringify(figures));
      if (process.env.FUZZ_FIGURES_DIR) {
        writeFileSync(
          join(process.env.FUZZ_FIGURES_DIR, 'config.json'),
          `${JSON.stringify(figures, null, 2)}\n`,
        );
      }
      assert.ok(accepted.length > 0 && accepted.length < CASES, 'the campaign needs both outcomes');
    },
  );
});
