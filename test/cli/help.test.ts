import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli, tempDir } from './helpers.js';

// The shape of every help text: one usage line naming the command, its own description and
// options, and the session commands' global options only under the session commands.

const cwd = tempDir();
const help = async (...args: string[]) => {
  const r = await runCli(args, cwd);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  return r.stdout;
};

/** The lines that start a usage: "Usage: ..." or a line of a group's list starting "sessiongate". */
const usageLines = (text: string) => text.split('\n').filter((l) => /^(Usage:|sessiongate )/.test(l));

describe('cli: help texts', () => {
  it('quickstart --help: its usage line and description, nothing else', async () => {
    assert.equal(
      await help('quickstart', '--help'),
      'Usage: sessiongate quickstart [--port P]\n' +
        '  Tries the gateway out: serves examples/quickstart (what "npm start" runs). The first start\n' +
        '  adds the user demo to var/users.yaml and prints its generated password once.\n' +
        "  --port P: the port of the gateway (default: the example's, 8080).\n",
    );
  });

  it('serve, init, check-config and quickstart --help list only their own options', async () => {
    for (const name of ['serve', 'init', 'check-config', 'quickstart']) {
      for (const flag of ['--help', '-h']) {
        const text = await help(name, flag);
        const lines = text.split('\n');
        assert.match(lines[0]!, new RegExp(`^Usage: sessiongate ${name}( \\[\\S.*)?$`), `${name} ${flag}`);
        assert.deepEqual(usageLines(text), [lines[0]], `${name}: one usage line`);
        for (const foreign of ['Global options', '--store', '--key-file', '--url', '--token-file']) {
          assert.ok(!text.includes(foreign), `${name} --help mentions ${foreign}:\n${text}`);
        }
        assert.ok(text.endsWith('\n') && !text.endsWith('\n\n'), `${name}: ends with one newline`);
      }
    }
  });

  it('a session command: its usage, then the global options, which name every store', async () => {
    const text = await help('session', 'kill', '--help');
    const [usage, description, blank, heading] = text.split('\n');
    assert.equal(usage, 'Usage: sessiongate session kill (ID | --user NAME) [--json]');
    assert.match(description!, /^ {2}Closes the session/);
    assert.equal(blank, '');
    assert.equal(heading, 'Global options (every session command):');
    assert.match(
      text,
      /\n {2}--store URL {10}memory \| sqlite:PATH \| redis:\/\/HOST:PORT \| redis\+cluster:\/\/HOST:PORT,\.\.\.\n/,
    );
  });

  it('session --help lists the session commands only, each once', async () => {
    const text = await help('session', '--help');
    const lines = usageLines(text);
    assert.equal(lines[0], 'Usage: sessiongate session <command> [options]');
    const commands = lines.slice(1).map((l) => /^sessiongate session (data \w+|\w+)/.exec(l)?.[1] ?? l);
    assert.deepEqual(commands, [
      'create',
      'exists',
      'modify',
      'data get',
      'data set',
      'remove',
      'kill',
      'list',
      'show',
    ]);
    assert.equal(text.split('Global options (every session command):').length, 2);
  });

  it('the top help names quickstart', async () => {
    const text = await help('--help');
    assert.match(text, /\n {2}sessiongate quickstart \[--port P\]\n/);
    assert.match(text, /\n {2}quickstart {11}\S/);
  });
});
