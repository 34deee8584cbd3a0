import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { launchFlags, semiSpaceChosen, serveV8Flags } from '../../src/cli/relaunch.js';
import { BIN, tempDir } from './helpers.js';

const SEMI_64 = ['--min-semi-space-size=64', '--max-semi-space-size=64'];

describe('serveV8Flags', () => {
  it('gives fixed semi-spaces and no memory reducer by default', () => {
    assert.deepEqual(serveV8Flags({ semiSpaceMb: 64, memoryReducer: false }, [], undefined), [
      ...SEMI_64,
      '--no-memory-reducer',
    ]);
  });

  it('leaves out what the operator chose, or asked to keep', () => {
    const keep = { semiSpaceMb: 64, memoryReducer: false };
    assert.deepEqual(serveV8Flags(keep, ['--max-semi-space-size=8'], undefined), ['--no-memory-reducer']);
    assert.deepEqual(serveV8Flags(keep, [], '--max_semi_space_size=8 --max-old-space-size=512'), [
      '--no-memory-reducer',
    ]);
    assert.deepEqual(serveV8Flags(keep, ['--memory-reducer'], undefined), SEMI_64);
    assert.deepEqual(serveV8Flags(keep, ['--no_memory_reducer'], undefined), SEMI_64);
    assert.deepEqual(serveV8Flags({ semiSpaceMb: 0, memoryReducer: true }, [], undefined), []);
    assert.deepEqual(serveV8Flags({ semiSpaceMb: 16, memoryReducer: true }, [], undefined), [
      '--min-semi-space-size=16',
      '--max-semi-space-size=16',
    ]);
  });

  it('adds nothing to the process it relaunched (its command line has the flags)', () => {
    const first = serveV8Flags({ semiSpaceMb: 64, memoryReducer: false }, ['--import', 'tsx'], undefined);
    assert.deepEqual(
      serveV8Flags({ semiSpaceMb: 64, memoryReducer: false }, ['--import', 'tsx', ...first], undefined),
      [],
    );
  });

  it('semiSpaceChosen reads both spellings and ignores other sizes', () => {
    assert.equal(semiSpaceChosen(['--min_semi_space_size=2'], undefined), true);
    assert.equal(semiSpaceChosen([], '--max-old-space-size=4096'), false);
  });
});

describe('launchFlags (decided in bin/sessiongate.js before the program loads)', () => {
  const ALL = [...SEMI_64, '--no-memory-reducer'];

  it('gives a single-process serve and quickstart the serve flags', () => {
    assert.deepEqual(launchFlags(['serve', '--config', 'gw.yaml'], [], undefined), ALL);
    assert.deepEqual(launchFlags(['serve', '--workers', '1'], [], undefined), ALL);
    assert.deepEqual(launchFlags(['quickstart', '--port', '9000'], [], undefined), ALL);
    assert.deepEqual(launchFlags(['serve', '--semi-space-mb=16', '--memory-reducer'], [], undefined), [
      '--min-semi-space-size=16',
      '--max-semi-space-size=16',
    ]);
  });

  it('gives none where the program decides or refuses: workers, help, bad values, other commands', () => {
    for (const argv of [
      ['serve', '--workers', '4'],
      ['serve', '--workers', 'many'],
      ['serve', '--help'],
      ['quickstart', '-h'],
      ['serve', '--semi-space-mb', 'lots'],
      ['serve', '--semi-space-mb', '2048'],
      ['serve', '--semi-space-mb', '0', '--memory-reducer'],
      ['check-config', 'gw.yaml'],
      ['session', 'list'],
      ['--version'],
      [],
    ]) {
      assert.deepEqual(launchFlags(argv, [], undefined), [], argv.join(' '));
    }
  });

  it('gives none to a process started with them (one process)', () => {
    assert.deepEqual(launchFlags(['serve'], ALL, undefined), []);
  });
});

/** VmRSS of a process, MB. */
const residentMb = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

describe('the relaunching parent of serve', () => {
  it(
    'loads nothing of the program: far smaller than the gateway it started',
    { skip: !existsSync('/proc/self/status') && 'needs /proc' },
    async () => {
      const dir = tempDir();
      writeFileSync(
        join(dir, 'sessiongate.yaml'),
        `listen: { host: 127.0.0.1, port: 0 }\nstore: memory\nkeys: ./keyring.json\nadmin: { enabled: false }\nroutes:\n  - { match: { path: / }, upstream: demo }\n`,
      );
      const parent = spawn(process.execPath, [BIN, 'serve', '--config', 'sessiongate.yaml'], {
        cwd: dir,
        env: { ...process.env, NODE_OPTIONS: '', SESSIONGATE_DEBUG: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      try {
        let stdout = '';
        let stderr = '';
        parent.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const listening = new Promise<number>((resolve) =>
          parent.stdout.on('data', (d: Buffer) => {
            stdout += d.toString();
            const pid = /"pid":(\d+).*"msg":"listening"/.exec(stdout)?.[1];
            if (pid) resolve(Number(pid));
          }),
        );
        const gateway = await Promise.race([
          listening,
          once(parent, 'exit').then(() => assert.fail(`serve exited: ${stderr}`)),
        ]);
        assert.notEqual(gateway, parent.pid, 'relaunched');
        const [mine, its] = [residentMb(parent.pid!), residentMb(gateway)];
        // A parent that loaded the program (and checked the config) kept 125-138 MB here; a bare
        // Node process with tsx for the sources about 72 MB, the installed package's 43 MB.
        assert.ok(mine < 100, `parent ${mine.toFixed(0)} MB resident, gateway ${its.toFixed(0)} MB`);
        assert.ok(mine < its * 0.6, `parent ${mine.toFixed(0)} MB resident, gateway ${its.toFixed(0)} MB`);
        const exited = once(parent, 'exit');
        parent.kill('SIGTERM');
        assert.deepEqual((await exited)[0], 0);
      } finally {
        if (parent.exitCode === null) parent.kill('SIGKILL');
      }
    },
  );
});
