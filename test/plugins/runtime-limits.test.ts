import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { PluginHost } from '../../src/plugins/host.js';
import { pluginSpecSchema } from '../../src/plugins/load.js';
import { LOG_LINE_LIMIT } from '../../src/plugins/runtimes/json-lines.js';
import { ProcessRuntime } from '../../src/plugins/runtimes/process.js';
import { SpsPythonRuntime } from '../../src/plugins/runtimes/sps-python.js';
import type { PluginRuntime } from '../../src/plugins/runtime.js';
import { testEngine } from '../session/helpers.js';
import { recordingLogger, until } from './helpers.js';

const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
const hosts: PluginHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
});

type Logger = ReturnType<typeof recordingLogger>;
const MiB = 1024 * 1024;

async function setup(make: (logger: Logger) => PluginRuntime, timeoutMs = 5000) {
  const logger = recordingLogger();
  const { engine } = testEngine({ logger });
  const host = new PluginHost(engine, [{ name: 'p', runtime: make(logger), timeoutMs }], logger);
  hosts.push(host);
  const { id } = await engine.create();
  const call = async (act: Record<string, unknown>) => {
    const started = performance.now();
    const out = await host.authenticate('p', id, { key_value_pairs: { act: JSON.stringify(act) } });
    return { ...out, ms: performance.now() - started };
  };
  const failures = () => logger.lines.filter((l) => l.message === 'plugin hook failed');
  return { call, logger, failures };
}

const node =
  (options = {}) =>
  (logger: Logger) =>
    new ProcessRuntime(
      'aa',
      'p',
      [process.execPath, fixture('process-fuzz.mjs')],
      {},
      logger,
      undefined,
      options,
    );
const python =
  (options = {}) =>
  (logger: Logger) =>
    new SpsPythonRuntime(fixture('py-fuzz'), 'p', '', logger, undefined, options);

describe('what is read from a process plugin is bounded', () => {
  it('an 8 MiB line on stderr is logged once, cut, with the number of bytes dropped', async () => {
    const { call, logger } = await setup(node());
    assert.equal((await call({ do: 'stderr', lines: 1, bytes: 8 * MiB })).verdict, 'ACCEPT');
    await until(() => logger.lines.some((l) => l.fields.stream === 'stderr'));
    const lines = logger.lines.filter((l) => l.fields.stream === 'stderr');
    assert.equal(lines.length, 1, 'logged once');
    assert.equal(Buffer.byteLength(lines[0]!.message), LOG_LINE_LIMIT);
    assert.equal(lines[0]!.fields.dropped, 8 * MiB - LOG_LINE_LIMIT);
  });

  it('an 8 MiB answer fails the call at once (not at its deadline), restarts the process; the next call works', async () => {
    const { call, failures } = await setup(node(), 20_000);
    const out = await call({ do: 'huge', bytes: 8 * MiB, json: true });
    assert.deepEqual([out.verdict, out.failure], ['DENY', 'malformed']);
    assert.ok(out.ms < 10_000, `failed after ${Math.round(out.ms)} ms`);
    assert.match(String(failures()[0]?.fields.error), /over max_message_bytes \(1048576\)/);
    assert.equal((await call({ do: 'ok' })).verdict, 'ACCEPT');
  });

  it('max_message_bytes is per plugin: 4 KiB refuses a 5 KiB answer and takes a 3 KiB one', async () => {
    const { call } = await setup(node({ maxMessageBytes: 4096 }));
    assert.equal((await call({ do: 'huge', bytes: 5000, json: true })).failure, 'malformed');
    assert.equal((await call({ do: 'huge', bytes: 3000, json: true })).verdict, 'ACCEPT');
    const spec = { name: 'p', runtime: 'process', kind: 'aa', command: ['x'], max_message_bytes: 4096 };
    assert.equal(pluginSpecSchema.parse(spec).max_message_bytes, 4096);
    const module = { name: 'p', runtime: 'module', path: 'x.ts', max_message_bytes: 4096 };
    assert.match(JSON.stringify(pluginSpecSchema.safeParse(module).error?.issues), /process and sps-python/);
  });

  it('an answer without a newline times out; the process is restarted so the next answer is read', async () => {
    const { call } = await setup(node(), 1500);
    assert.equal((await call({ do: 'nonewline' })).failure, 'timeout');
    assert.equal((await call({ do: 'ok' })).verdict, 'ACCEPT');
  });
});

describe('protocol lines that parse as JSON but are no message', () => {
  it('null, 7, "text", [] on stdout are logged as not JSON; the call is answered', async () => {
    const { call, logger } = await setup(node());
    for (const text of ['null', '7', '"text"', '[]'])
      assert.equal((await call({ do: 'noise', text })).verdict, 'ACCEPT', text);
    const noted = logger.lines.filter((l) => l.message === 'plugin printed a line that is not JSON');
    assert.deepEqual(
      noted.map((l) => l.fields.output),
      ['null', '7', '"text"', '[]'],
    );
  });
});

describe('what is read from an sps-python plugin is bounded', () => {
  it('an 8 MiB print is logged once, cut; a 2 MiB result fails; the next call works', async () => {
    const { call, logger } = await setup(python());
    assert.equal((await call({ do: 'print', bytes: 8 * MiB })).verdict, 'ACCEPT');
    const printed = logger.lines.filter((l) => l.fields.stream === 'stdout');
    assert.equal(printed.length, 1);
    assert.equal(Buffer.byteLength(printed[0]!.message), LOG_LINE_LIMIT);
    assert.equal(printed[0]!.fields.dropped, 8 * MiB - LOG_LINE_LIMIT);
    assert.equal((await call({ do: 'huge', bytes: 2 * MiB })).failure, 'malformed');
    assert.equal((await call({ do: 'ok' })).verdict, 'ACCEPT');
  });
});
