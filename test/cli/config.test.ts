import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveSettings } from '../../src/cli/context.js';
import { runCli, tempDir } from './helpers.js';

// The subset of the gateway config file the CLI reads, in process (no store is opened).
describe('cli: config file', () => {
  function config(text: string): { dir: string; file: string } {
    const dir = tempDir();
    writeFileSync(join(dir, 'gw.yaml'), text);
    return { dir, file: join(dir, 'gw.yaml') };
  }

  it('reads store, keys and profiles; relative paths resolve against the file', async () => {
    const { dir, file } = config(
      [
        'listen: { host: 127.0.0.1, port: 8080 }',
        'store: sqlite:./data/s.db',
        'keys: keys/ring.json',
        'profiles:',
        '  default:',
        '    cookie: { name: MRHSession }',
        '    inactivity_timeout: 1200',
        '    policy_timeout: 60',
        '    max_sessions_per_user: { limit: 3, on_limit: refuse }',
        '    policy: [logon, allow]',
        '  api: { max_session_timeout: 3600, max_sessions_per_user: 2, max_concurrent_sessions: 10 }',
      ].join('\n'),
    );
    const s = await resolveSettings({ configFile: file }, '/elsewhere');
    assert.deepEqual(s.store, { kind: 'sqlite', path: join(dir, 'data/s.db') });
    assert.equal(s.keyFile, join(dir, 'keys/ring.json'));
    const byName = Object.fromEntries(s.profiles.map((p) => [p.name, p]));
    assert.equal(byName.default?.inactivityTimeout, 1200);
    assert.equal(byName.default?.accessPolicyTimeout, 60);
    assert.equal(byName.default?.maxSessionsPerUser, 3);
    assert.equal(byName.default?.onUserLimit, 'refuse');
    assert.equal(byName.api?.maxSessionTimeout, 3600);
    assert.equal(byName.api?.maxSessionsPerUser, 2);
    assert.equal(byName.api?.onUserLimit, 'evict_oldest');
    assert.equal(byName.api?.maxConcurrentSessions, 10);
    // Flags win over the file; flag paths resolve against the working directory.
    const flags = await resolveSettings(
      { configFile: file, store: 'sqlite:x.db', keyFile: 'k.json' },
      '/work',
    );
    assert.deepEqual(flags.store, { kind: 'sqlite', path: '/work/x.db' });
    assert.equal(flags.keyFile, '/work/k.json');
    const defaults = await resolveSettings({}, '/work');
    assert.deepEqual(defaults.store, { kind: 'sqlite', path: '/work/var/sessiongate.db' });
    assert.equal(defaults.keyFile, '/work/var/keyring.json');
    assert.equal((await resolveSettings({ store: 'memory' }, '/work')).keyFile, undefined);
  });

  it('wrong types are one line naming the file and the path (exit 1)', async () => {
    const cases: [string, string][] = [
      [
        'profiles:\n  default:\n    inactivity_timeout: -1\n',
        'profiles.default.inactivity_timeout: expected a whole number >= 0',
      ],
      [
        'profiles:\n  default:\n    inactivity_timeout: "900"\n',
        'profiles.default.inactivity_timeout: expected a whole number >= 0',
      ],
      [
        'profiles:\n  a:\n    max_sessions_per_user: { limit: 2, on_limit: drop }\n',
        'profiles.a.max_sessions_per_user.on_limit: expected evict_oldest or refuse',
      ],
      [
        'profiles:\n  a:\n    max_sessions_per_user: 1.5\n',
        'profiles.a.max_sessions_per_user.limit: expected a whole number >= 0',
      ],
      ['store: 5\n', 'store: expected a string (memory, sqlite:PATH or a redis URL)'],
      ['keys: [a]\n', 'keys: expected a string (path of the key ring file)'],
      ['profiles: [a, b]\n', 'profiles: expected a mapping of profile names to settings'],
      ['- a\n- b\n', 'expected a mapping at the top level'],
    ];
    for (const [text, message] of cases) {
      const { dir } = config(text);
      const r = await runCli(['session', 'list', '--config', 'gw.yaml'], dir);
      assert.equal(r.code, 1, text);
      assert.equal(r.stderr, `sessiongate: SG_ERR_CONFIG: gw.yaml: ${message}\n`);
    }
  });

  it('unreadable and malformed files are one line too', async () => {
    const missing = await runCli(['session', 'list', '--config', 'nope.yaml'], tempDir());
    assert.equal(
      missing.stderr,
      'sessiongate: SG_ERR_CONFIG: nope.yaml: cannot read the config file (no such file)\n',
    );
    const { dir } = config('profiles:\n  default: {\n');
    const bad = await runCli(['session', 'list', '--config-file', 'gw.yaml'], dir);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^sessiongate: SG_ERR_CONFIG: gw.yaml: invalid YAML: /);
    const store = config('store: mongodb://localhost\n');
    const r = await runCli(['session', 'list', '--config', 'gw.yaml'], store.dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /SG_ERR_STORE_URL: gw.yaml: store: unknown store "mongodb:\/\/localhost"/);
    const port = config('store: redis://:pw@localhost:0\n');
    const p = await runCli(['session', 'list', '--config', 'gw.yaml'], port.dir);
    assert.equal(
      p.stderr,
      'sessiongate: SG_ERR_STORE_URL: gw.yaml: store: redis store URL "redis://:***@localhost:0": port 0 of localhost is not 1 to 65535\n',
    );
  });
});
