import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../src/core/logger.js';
import { PluginHost } from '../../src/plugins/host.js';
import { LOG_LINE_LIMIT } from '../../src/plugins/runtimes/json-lines.js';
import { ProcessRuntime } from '../../src/plugins/runtimes/process.js';
import { SpsPythonRuntime } from '../../src/plugins/runtimes/sps-python.js';
import type { PluginRuntime } from '../../src/plugins/runtime.js';
import { testEngine } from '../session/helpers.js';
import {
  fuzzCase,
  Picker,
  random,
  type Kind,
  type Limits,
  type Outcome,
  type Runtime,
} from './plugin-fuzz-cases.js';

// The plugin-reply campaign: seeded generated misbehaviours of `process` and `sps-python`
// plugins (aa and credential-store), each followed by a well-behaved call on the same runtime.
// Checked: the host never throws; every call ends within its deadline, with exactly the outcome
// the misbehaviour calls for (a malformed result is DENY or no credentials, counted as
// `malformed`); the well-behaved call after it works; no logged line is longer than the log
// limit; the gateway's memory stays bounded while plugins write lines of up to 8 MiB (50 MiB in
// the full run). Short by default (`npm test`); FUZZ_FULL=1 for the full size; FUZZ_PLUGIN_CASES
// overrides the cases per runtime and kind; FUZZ_SEED the seed.
const FULL = process.env.FUZZ_FULL === '1';
const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const CASES = Number(process.env.FUZZ_PLUGIN_CASES ?? (FULL ? 150 : 12));
const MiB = 1024 * 1024;
/** Time a call may take past its deadline: the event loop of a loaded machine. */
const SLACK_MS = 750;
const RSS_BOUND_MB = 200;

const fixture = (p: string) => fileURLToPath(new URL(`./fixtures/${p}`, import.meta.url));
const hosts: PluginHost[] = [];
after(async () => {
  for (const h of hosts) await h.close();
});

/** Keeps counts and the longest line only: a flood must not fill the test's own memory. */
function countingLogger() {
  const counts = new Map<string, number>();
  let longest = 0;
  const at = (fields: object, message: string) => {
    counts.set(message.slice(0, 60), (counts.get(message.slice(0, 60)) ?? 0) + 1);
    longest = Math.max(longest, Buffer.byteLength(message));
    void fields;
  };
  const logger: Logger = { info: at, warn: at, error: at };
  return { logger, longest: () => longest, counts };
}

interface Lane {
  runtime: Runtime;
  kind: Kind;
  limits: Limits;
  make(logger: Logger): PluginRuntime;
}

const node = (kind: Kind) => (logger: Logger) =>
  new ProcessRuntime(kind, 'p', [process.execPath, fixture('process-fuzz.mjs')], {}, logger);
const python = (kind: Kind) => (logger: Logger) =>
  new SpsPythonRuntime(fixture(kind === 'aa' ? 'py-fuzz' : 'py-fuzz-vault'), 'p', '', logger);
const hugeBytes = FULL ? 50 * MiB : 8 * MiB;
/** The deadline of the misbehaving calls; they reach a running process (the call before left one). */
const deadline = (runtime: Runtime) => (runtime === 'process' ? 2000 : 3000) + (FULL ? 1000 : 0);
/**
 * The well-behaved call after a misbehaviour may have to start a new process (python3 starts
 * slowly on a busy machine), so it goes through a second host on the same runtime with the
 * default deadline.
 */
const RESTART_DEADLINE_MS = 10_000;
const lane = (runtime: Runtime, kind: Kind): Lane => ({
  runtime,
  kind,
  limits: { maxMessageBytes: MiB, timeoutMs: deadline(runtime), hugeBytes },
  make: runtime === 'process' ? node(kind) : python(kind),
});
const LANES = [
  lane('process', 'aa'),
  lane('process', 'credentialstore'),
  lane('sps-python', 'aa'),
  lane('sps-python', 'credentialstore'),
];

type Tally = Record<string, Record<string, number>>;
const figures = {
  campaign: 'plugin-replies',
  seed: SEED,
  cases: 0,
  calls: 0,
  checked: [
    'the host never throws',
    'every call ends within its deadline (+ slack)',
    'the outcome is the one the misbehaviour calls for (malformed results deny / give no credentials)',
    'a well-behaved call after each misbehaviour works',
    `no logged line over ${LOG_LINE_LIMIT} bytes`,
    `peak RSS growth under ${RSS_BOUND_MB} MB`,
  ],
  by_misbehaviour: {} as Record<string, Tally>,
  outcomes: {} as Record<string, number>,
  host_throws: 0,
  longest_call_ms: 0,
  longest_logged_line_bytes: 0,
  process_starts: {} as Record<string, number>,
  rss_baseline_mb: 0,
  peak_rss_mb: 0,
  duration_ms: 0,
};
let peakRss = 0;
const sampleRss = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));

async function runLane(lane: Lane, seed: number): Promise<void> {
  const log = countingLogger();
  const { engine } = testEngine();
  const runtime = lane.make(log.logger);
  const host = new PluginHost(engine, [{ name: 'p', runtime, timeoutMs: lane.limits.timeoutMs }], log.logger);
  const patient = new PluginHost(
    engine,
    [{ name: 'p', runtime, timeoutMs: RESTART_DEADLINE_MS }],
    log.logger,
  );
  hosts.push(host, patient);
  const { id } = await engine.create();
  const hook = lane.kind === 'aa' ? 'authenticate' : 'get_password_list';

  /** One call: its outcome (from the host's failure count) and how long it took. */
  const call = async (
    act: Record<string, unknown>,
    via = host,
  ): Promise<{ outcome: Outcome; ms: number; value: unknown }> => {
    const failures = () => ({ ...via.stats.get('p', hook).failures });
    const before = failures();
    const started = performance.now();
    let value: unknown;
    try {
      const raw = JSON.stringify(act);
      value =
        lane.kind === 'aa'
          ? await via.authenticate('p', id, { key_value_pairs: { act: raw } })
          : await via.getPasswordList('p', id, { server_username: raw });
    } catch (err) {
      figures.host_throws++;
      throw err;
    }
    const ms = performance.now() - started;
    figures.calls++;
    figures.longest_call_ms = Math.max(figures.longest_call_ms, Math.round(ms));
    sampleRss();
    const after = failures();
    const failed = Object.keys(after).filter((k) => (after[k] ?? 0) > (before[k] ?? 0));
    assert.ok(failed.length <= 1, `one failure per call, got ${failed.join(', ')}`);
    return { outcome: (failed[0] as Outcome | undefined) ?? 'ok', ms, value };
  };

  const picker = new Picker(random(seed));
  const name = `${lane.runtime}/${lane.kind}`;
  const tally: Tally = (figures.by_misbehaviour[name] = {});
  assert.equal((await call({}, patient)).outcome, 'ok', `${name}: the first start`);
  for (let i = 0; i < CASES; i++) {
    const c = fuzzCase(picker, lane.runtime, lane.kind, lane.limits);
    const what = `${name} case ${i} (${c.name}: ${JSON.stringify(c.act).slice(0, 160)})`;
    const got = await call(c.act);
    (tally[c.name] ??= {})[got.outcome] = (tally[c.name]?.[got.outcome] ?? 0) + 1;
    figures.outcomes[got.outcome] = (figures.outcomes[got.outcome] ?? 0) + 1;
    figures.cases++;
    assert.ok(got.ms <= lane.limits.timeoutMs + SLACK_MS, `${what}: took ${Math.round(got.ms)} ms`);
    assert.equal(got.outcome, c.expect, what);
    if (got.outcome !== 'ok') {
      const denied =
        lane.kind === 'aa'
          ? (got.value as { verdict: string }).verdict === 'DENY'
          : (got.value as string[]).length === 0;
      assert.ok(denied, `${what}: a failure must deny / give no credentials`);
    }
    const fine = await call({}, patient);
    assert.equal(fine.outcome, 'ok', `${what}: the well-behaved call after it`);
    assert.ok(
      fine.ms <= RESTART_DEADLINE_MS + SLACK_MS,
      `${what}: the call after took ${Math.round(fine.ms)} ms`,
    );
  }
  figures.process_starts[name] = runtime.status?.().starts ?? 0;
  figures.longest_logged_line_bytes = Math.max(figures.longest_logged_line_bytes, log.longest());
  assert.ok(log.longest() <= LOG_LINE_LIMIT, `${name}: a logged line of ${log.longest()} bytes`);
}

describe('plugin-reply fuzz campaign', () => {
  it(`${CASES} generated misbehaviours per runtime and kind (seed ${SEED}): bounded, deadlines kept, malformed denies, recovers`, async () => {
    const started = performance.now();
    const baseline = process.memoryUsage().rss;
    peakRss = baseline;
    await Promise.all(LANES.map((lane, i) => runLane(lane, SEED + i)));
    figures.duration_ms = Math.round(performance.now() - started);
    figures.rss_baseline_mb = Math.round(baseline / MiB);
    figures.peak_rss_mb = Math.round(peakRss / MiB);
    if (process.env.FUZZ_FIGURES_DIR) {
      writeFileSync(
        join(process.env.FUZZ_FIGURES_DIR, 'plugin-replies.json'),
        JSON.stringify(figures, null, 2),
      );
    }
    assert.equal(figures.host_throws, 0);
    assert.ok(
      (peakRss - baseline) / MiB < RSS_BOUND_MB,
      `RSS grew ${Math.round((peakRss - baseline) / MiB)} MB`,
    );
  });
});
