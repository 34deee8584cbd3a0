import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';

/** Semi-space size `sessiongate serve` gives its processes unless told otherwise, MB. */
export const DEFAULT_SEMI_SPACE_MB = 64;

const SEMI_SPACE = /(^|\s)--m(in|ax)[-_]semi[-_]space[-_]size(=|\s|$)/;
const MEMORY_REDUCER = /^--(no[-_]?)?memory[-_]reducer$/;

/**
 * Whether this process already runs with a semi-space size of someone's choosing: on its
 * command line or in NODE_OPTIONS. Then `serve` keeps it (serveV8Flags adds no size).
 *
 * @example
 * ```ts
 * semiSpaceChosen(['--max-semi-space-size=32'], undefined); // true (so is --min-…)
 * semiSpaceChosen([], '--max-old-space-size=4096');         // false
 * ```
 */
export function semiSpaceChosen(execArgv: readonly string[], nodeOptions: string | undefined): boolean {
  return execArgv.some((a) => SEMI_SPACE.test(a)) || SEMI_SPACE.test(nodeOptions ?? '');
}

/**
 * The V8 flags for semi-spaces of `mb` MB, as the smallest and the largest size: V8 then
 * neither grows them step by step under load nor shrinks them while idle, so the first second
 * of load after a quiet hour has the same pauses as the hundredth.
 */
export function semiSpaceFlags(mb: number): string[] {
  return [`--min-semi-space-size=${mb}`, `--max-semi-space-size=${mb}`];
}

/**
 * The V8 flags `serve` gives its processes, leaving out any the operator already chose on
 * node's command line (or, for the semi-space size, in NODE_OPTIONS):
 * - semi-spaces fixed at `semiSpaceMb` (0: none; see semiSpaceFlags);
 * - `--no-memory-reducer` unless `memoryReducer`: V8's memory reducer, after about 8 s with
 *   little allocation, runs garbage collections that shrink the heap and its growth limit.
 *   When load comes back, the old generation is collected again and again (incremental marking
 *   slows every request while it runs) until the limit has grown back. A gateway is idle, then
 *   busy, all day. In bench:gateway the same code, idle between its runs, served 0.92× of
 *   what it served when kept busy; with the reducer off, 1.02× (bench/README.md, stop 13).
 *
 * @example
 * ```ts
 * serveV8Flags({ semiSpaceMb: 64, memoryReducer: false }, [], undefined);
 * // ['--min-semi-space-size=64', '--max-semi-space-size=64', '--no-memory-reducer']
 * ```
 */
export function serveV8Flags(
  choice: { semiSpaceMb: number; memoryReducer: boolean },
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  const flags: string[] = [];
  if (choice.semiSpaceMb > 0 && !semiSpaceChosen(execArgv, nodeOptions))
    flags.push(...semiSpaceFlags(choice.semiSpaceMb));
  // Node refuses this flag in NODE_OPTIONS, so only the command line can have chosen it.
  if (!choice.memoryReducer && !execArgv.some((a) => MEMORY_REDUCER.test(a)))
    flags.push('--no-memory-reducer');
  return flags;
}

/**
 * The V8 flags the `sessiongate` command must start with, decided from its arguments alone,
 * before the program is loaded (bin/sessiongate.js): `serve` in one process and `quickstart`
 * get serveV8Flags; everything else, `serve --workers N` (the primary gives its workers the
 * flags), help, and arguments `serve` will refuse get none. When flags are due, the command
 * starts Node again with them (relaunch) and stays a bare Node process that passes signals
 * on; run with the flags already on node's command line, it is the gateway itself.
 *
 * @example
 * ```ts
 * launchFlags(['serve', '--config', 'gw.yaml'], [], undefined);
 * // ['--min-semi-space-size=64', '--max-semi-space-size=64', '--no-memory-reducer']
 * launchFlags(['serve', '--workers', '4'], [], undefined); // []
 * ```
 */
export function launchFlags(
  argv: readonly string[],
  execArgv: readonly string[],
  nodeOptions: string | undefined,
): string[] {
  const [command, ...rest] = argv;
  if (command !== 'serve' && command !== 'quickstart') return [];
  const { values } = parseArgs({
    args: [...rest],
    options: {
      workers: { type: 'string' },
      'semi-space-mb': { type: 'string' },
      'memory-reducer': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: false,
    allowPositionals: true,
  });
  if (values.help === true) return [];
  if (command === 'quickstart')
    return serveV8Flags({ semiSpaceMb: DEFAULT_SEMI_SPACE_MB, memoryReducer: false }, execArgv, nodeOptions);
  if (values.workers !== undefined && Number(values.workers) !== 1) return [];
  const semi =
    values['semi-space-mb'] === undefined ? DEFAULT_SEMI_SPACE_MB : Number(values['semi-space-mb']);
  if (!Number.isInteger(semi) || semi < 0 || semi > 1024) return [];
  return serveV8Flags(
    { semiSpaceMb: semi, memoryReducer: values['memory-reducer'] === true },
    execArgv,
    nodeOptions,
  );
}

/**
 * Runs this program again with extra Node flags (V8's heap flags can only be set when a
 * process starts) and waits for it: the same entry script, `args` as its arguments,
 * standard streams shared. It does not relaunch in turn: its command line carries the flags,
 * which `serveV8Flags` sees. SIGTERM, SIGINT and SIGHUP are passed on; the new process is
 * in a process group of its own, so a Ctrl-C in a terminal reaches it once, through this one.
 * If this process dies, the other sees its IPC channel close and stops gracefully.
 * Resolves with its exit code (1 if a signal ended it).
 */
export function relaunch(nodeFlags: readonly string[], args: readonly string[]): Promise<number> {
  const entry = process.argv[1];
  if (!entry) return Promise.reject(new Error('cannot relaunch: no entry script'));
  const child = spawn(process.execPath, [...process.execArgv, ...nodeFlags, entry, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  const pass = (signal: NodeJS.Signals) => child.kill(signal);
  for (const s of signals) process.on(s, pass);
  const done = () => {
    for (const s of signals) process.off(s, pass);
  };
  return new Promise((resolve, reject) => {
    child.once('error', (err) => (done(), reject(err)));
    child.once('exit', (code) => (done(), resolve(code ?? 1)));
  });
}
