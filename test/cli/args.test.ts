import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { duration, table } from '../../src/cli/output.js';
import { ROOT, runCli, tempDir } from './helpers.js';

// In-process runs of `main` against the memory store: flags, usage errors, config parsing.
const MEM = ['--store', 'memory'];
const ID = '0123456789abcdef0123456789abcdef';
const TOKEN = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

describe('cli: help and dispatch', () => {
  const cwd = tempDir();

  it('prints help and the version', async () => {
    const top = await runCli(['--help'], cwd);
    assert.equal(top.code, 0);
    assert.match(top.stdout, /session create/);
    const session = await runCli(['session', '--help'], cwd);
    assert.equal(session.code, 0);
    assert.match(session.stdout, /--key-file PATH/);
    const create = await runCli(['session', 'create', '--help', '--bogus'], cwd);
    assert.equal(create.code, 0);
    assert.match(create.stdout, /--client-ip IP/);
    const data = await runCli(['session', 'data', 'get', '-h'], cwd);
    assert.match(data.stdout, /--secure \| --config/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.deepEqual(await runCli(['--version'], cwd), { code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it('no command is a one-line usage error pointing to the help', async () => {
    const r = await runCli([], cwd);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'sessiongate: SG_ERR_USAGE: missing command (see: sessiongate --help)\n');
    const s = await runCli(['session'], cwd);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /see: sessiongate session --help/);
  });

  it('unknown commands are usage errors', async () => {
    for (const args of [
      ['bogus'],
      ['session', 'bogus'],
      ['session', 'data', 'del', ID, 'x'],
      ['session', 'toString'],
    ]) {
      const r = await runCli(args, cwd);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /^sessiongate: SG_ERR_USAGE: /);
    }
  });
});

describe('cli: flags', () => {
  const cwd = tempDir();

  it('an unknown flag is one line, exit 2', async () => {
    const r = await runCli(['session', 'create', ...MEM, '--bogus'], cwd);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      "sessiongate: SG_ERR_USAGE: unknown option --bogus; a value starting with '-' goes after '--' (see: sessiongate session create --help)\n",
    );
  });

  it('timeouts are whole numbers of seconds >= 0', async () => {
    for (const [args, shown] of [
      [['--timeout', '-5'], '-5'],
      [['--timeout=-5'], '-5'],
      [['--timeout', '1.5'], '1.5'],
      [['--timeout', 'abc'], 'abc'],
      [['--timeout='], '""'],
    ] as const) {
      const r = await runCli(['session', 'create', ...MEM, ...args], cwd);
      assert.equal(r.code, 2, args.join(' '));
      assert.equal(
        r.stderr,
        `sessiongate: SG_ERR_INVALID_TIMEOUT: --timeout: expected a whole number of seconds >= 0, got ${shown}\n`,
      );
    }
    const huge = await runCli(['session', 'create', ...MEM, '--lifetime', '99999999999'], cwd);
    assert.equal(huge.code, 2);
    assert.match(huge.stderr, /--lifetime: at most 3153600000 seconds/);
    const remaining = await runCli(['session', 'modify', ID, ...MEM, '--remaining', '-1'], cwd);
    assert.equal(remaining.code, 2);
    assert.match(remaining.stderr, /--remaining: expected a whole number of seconds >= 0, got -1/);
  });

  it('checks --state, --client-ip and --user', async () => {
    const state = await runCli(['session', 'create', ...MEM, '--state', 'open'], cwd);
    assert.equal(state.code, 2);
    assert.match(
      state.stderr,
      /SG_ERR_INVALID_STATE: --state: expected one of inprogress, allow, deny, redirect/,
    );
    const ip = await runCli(['session', 'create', ...MEM, '--client-ip', '10.0.0.300'], cwd);
    assert.equal(ip.code, 2);
    assert.match(ip.stderr, /--client-ip: expected an IPv4 or IPv6 address/);
    const user = await runCli(['session', 'create', ...MEM, '--user', ''], cwd);
    assert.equal(user.code, 2);
    const list = await runCli(['session', 'list', ...MEM, '--state', 'x'], cwd);
    assert.equal(list.code, 2);
  });

  it('exists takes an id positionally or a token with --token, never mixed up', async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing ID \(or --token TOKEN\)/],
      [[ID, '--token', TOKEN], /either ID or --token TOKEN, not both/],
      [[TOKEN], /SG_ERR_INVALID_SESSION_ID: .*got a session token; pass a token with --token TOKEN/],
      [['--token', ID], /SG_ERR_INVALID_TOKEN: --token expects a session token but got a session id/],
      [['--token', 'short'], /SG_ERR_INVALID_TOKEN: --token: malformed session token/],
      [['not-an-id'], /SG_ERR_INVALID_SESSION_ID: malformed session id \(expected 32 hex characters, got 9/],
      [[ID, ID], /too many arguments/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['session', 'exists', ...MEM, ...args], cwd);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, message);
      assert.ok(!r.stderr.includes(TOKEN), 'a token is never echoed');
    }
    // Positional tokens in admin commands are refused without echo, too.
    const show = await runCli(['session', 'show', ...MEM, TOKEN], cwd);
    assert.equal(show.code, 2);
    assert.ok(!show.stderr.includes(TOKEN));
  });

  it('modify needs a change, and lifetime excludes remaining', async () => {
    const none = await runCli(['session', 'modify', ...MEM, ID], cwd);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /nothing to change/);
    const both = await runCli(['session', 'modify', ...MEM, ID, '--lifetime', '10', '--remaining', '5'], cwd);
    assert.equal(both.code, 2);
    assert.equal(
      both.stderr,
      'sessiongate: SG_ERR_LIFETIME_WITH_REMAINING: --lifetime and --remaining cannot be used together\n',
    );
  });

  it('data flags: --secure with --config is refused; secure arguments are never echoed', async () => {
    const both = await runCli(['session', 'data', 'get', ...MEM, ID, '--secure', '--config', 'x'], cwd);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--secure and --config cannot be used together/);
    const file = await runCli(
      ['session', 'data', 'get', ...MEM, ID, '--config', 'gw.yaml', 'inactivity_timeout'],
      cwd,
    );
    assert.equal(file.code, 2);
    assert.match(file.stderr, /give the config file with --config-file FILE/);
    const missing = await runCli(['session', 'data', 'get', ...MEM, ID], cwd);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing KEY/);
    // Name and value swapped by mistake: the error must not print the would-be secret.
    const swapped = await runCli(
      ['session', 'data', 'set', ...MEM, ID, '--secure', 'p@ss w0rd', 'session.x'],
      cwd,
    );
    assert.equal(swapped.code, 2);
    assert.match(swapped.stderr, /SG_ERR_INVALID_VARIABLE_NAME/);
    assert.ok(!swapped.stderr.includes('p@ss'));
    const dashed = await runCli(
      ['session', 'data', 'set', ...MEM, ID, '--secure', 'session.x', '--hunter2'],
      cwd,
    );
    assert.equal(dashed.code, 2);
    assert.ok(!dashed.stderr.includes('hunter2'));
    const plainName = await runCli(['session', 'data', 'get', ...MEM, ID, 'bad name'], cwd);
    assert.equal(plainName.code, 2);
    assert.match(plainName.stderr, /SG_ERR_INVALID_VARIABLE_NAME: invalid variable name "bad name"/);
  });

  it('--store reads URLs as the gateway does: a wrong one is one usage line (no password); --config and --config-file exclude each other', async () => {
    const cases: [string, string][] = [
      [
        'postgres://x',
        'unknown store "postgres://x": use memory, sqlite:PATH, redis://HOST:PORT or redis+cluster://HOST:PORT,HOST:PORT',
      ],
      [
        'redis://:hunter2@h:99999',
        'redis store URL "redis://:***@h:99999": port 99999 of h is not 1 to 65535',
      ],
      [
        'redis+cluster://a:1,b:2?nearCache=2',
        'redis store URL "redis+cluster://a:1,b:2?nearCache=2": nearCache is 0 or 1',
      ],
    ];
    for (const [url, message] of cases) {
      const r = await runCli(['session', 'list', '--store', url], cwd);
      assert.deepEqual(r, {
        code: 2,
        stdout: '',
        stderr: `sessiongate: SG_ERR_USAGE: --store: ${message}\n`,
      });
    }
    const both = await runCli(
      ['session', 'list', ...MEM, '--config', 'a.yaml', '--config-file', 'b.yaml'],
      cwd,
    );
    assert.equal(both.code, 2);
  });
});

describe('cli: memory store runs', () => {
  it('create prints a token and writes no files (ephemeral key ring)', async () => {
    const cwd = tempDir();
    const r = await runCli(['session', 'create', ...MEM, '--timeout', '60', '--user', 'bob'], cwd);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^[A-Za-z0-9_-]{43}\n$/);
    const j = await runCli(['session', 'create', ...MEM, '--json'], cwd);
    const created = JSON.parse(j.stdout) as { id: string; token: string };
    assert.deepEqual(Object.keys(created), ['id', 'token']);
    assert.match(created.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(readdirSync(cwd), []);
  });

  it('unknown sessions: exists false, remove and show fail with exit 1', async () => {
    const cwd = tempDir();
    assert.equal((await runCli(['session', 'exists', ...MEM, ID], cwd)).stdout, 'false\n');
    const upper = await runCli(['session', 'exists', ...MEM, ID.toUpperCase()], cwd);
    assert.equal(upper.stdout, 'false\n');
    for (const cmd of [['remove'], ['show'], ['modify', '--timeout', '5'], ['data', 'get']]) {
      const args =
        cmd[0] === 'modify' ? ['session', 'modify', ID, '--timeout', '5'] : ['session', ...cmd, ID];
      if (cmd[0] === 'data') args.push('session.custom.x');
      const r = await runCli([...args, ...MEM], cwd);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr, `sessiongate: SG_ERR_SESSION_NOT_FOUND: no live session with id ${ID}\n`);
    }
    const list = await runCli(['session', 'list', ...MEM, '--json'], cwd);
    assert.deepEqual(JSON.parse(list.stdout), []);
  });

  it('SESSIONGATE_DEBUG=1 adds the stack trace', async () => {
    const r = await runCli(['session', 'remove', ID, ...MEM], tempDir(), { SESSIONGATE_DEBUG: '1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\n\s+at /);
  });
});

describe('cli: output helpers', () => {
  it('formats durations and tables', () => {
    assert.equal(duration(-5), '0s');
    assert.equal(duration(45_900), '45s');
    assert.equal(duration(899_000), '14m59s');
    assert.equal(duration(7 * 3600_000 + 60_000), '7h01m');
    assert.equal(duration(604_800_000 - 1000), '6d23h');
    assert.equal(
      table([
        ['A', 'BB'],
        ['ccc', 'd'],
      ]),
      'A    BB\nccc  d\n',
    );
  });
});
