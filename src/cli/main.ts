import { isSessionGateError } from '../core/errors.js';
import { USAGE_CODES, usage, wantsHelp } from './args.js';
import { processIo, type Io } from './context.js';
import { dataGet, dataSet } from './data-commands.js';
import { adminCommandHelp, commandHelp, groupHelp, SESSION_HELP, TOP_HELP, version } from './help.js';
import { create, exists, modify, remove, type Command } from './session-commands.js';
import { list, show } from './view-commands.js';
import { kill } from './kill-command.js';

/**
 * Top-level commands besides `session` (each file adds its own). Loaded when one runs: the
 * gateway's modules (proxy, plugins, config schema) are most of the program, and `--version`
 * or a session command has no use for them.
 */
const TOP_COMMANDS: Record<string, Command> = {
  serve: async (args, io) => (await import('./serve-commands.js')).serve(args, io),
  'check-config': async (args, io) => (await import('./serve-commands.js')).checkConfig(args, io),
  init: async (args, io) => (await import('./init-command.js')).init(args, io),
  quickstart: async (args, io) => (await import('./quickstart-command.js')).quickstart(args, io),
};

const SESSION_COMMANDS: Record<string, Command> = { create, exists, modify, remove, kill, list, show };
const DATA_COMMANDS: Record<string, Command> = { get: dataGet, set: dataSet };

/**
 * The `sessiongate` command. Returns the exit code: 0 ok, 1 error, 2 usage error. Every
 * failure is one line on stderr, `sessiongate: <message>`; SESSIONGATE_DEBUG=1 adds the stack.
 *
 * @example
 * ```ts
 * process.exitCode = await main(['session', 'list', '--store', 'sqlite:./var/s.db']);
 * ```
 */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    return report(err, io);
  }
}

async function dispatch(argv: string[], io: Io): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) throw usage('missing command', '');
  if (first === '--help' || first === '-h' || first === 'help') {
    io.out(TOP_HELP);
    return 0;
  }
  if (first === '--version' || first === '-V') {
    io.out(`${version()}\n`);
    return 0;
  }
  const top = Object.hasOwn(TOP_COMMANDS, first) ? TOP_COMMANDS[first] : undefined;
  if (top) return runCommand(first, top, rest, io);
  if (Object.hasOwn(ADMIN_GROUPS, first)) return admin(first, rest, io);
  if (first !== 'session') throw usage(`unknown command ${JSON.stringify(first.slice(0, 40))}`, '');
  return session(rest, io);
}

/**
 * `users`, `credentials`, `plugin` and `keys`: their modules (and the plugin code they pull in) load
 * only when one of them runs.
 */
const ADMIN_GROUPS: Record<string, () => Promise<Record<string, Command>>> = {
  users: async () => (await import('./users-commands.js')).USERS_COMMANDS,
  credentials: async () => (await import('./credentials-commands.js')).CREDENTIALS_COMMANDS,
  plugin: async () => ({ run: (await import('./plugin-commands.js')).pluginRun }),
  keys: async () => (await import('./keys-commands.js')).KEYS_COMMANDS,
};

async function admin(group: string, argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(groupHelp(group));
    return 0;
  }
  if (name === undefined) throw usage(`missing ${group} command`, group);
  const commands = await ADMIN_GROUPS[group]!();
  const run = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!run) throw usage(`unknown ${group} command ${JSON.stringify(name.slice(0, 40))}`, group);
  if (wantsHelp(rest)) {
    io.out(adminCommandHelp(`${group} ${name}`));
    return 0;
  }
  return run(rest, io);
}

async function session(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) throw usage('missing session command', 'session');
  if (name === '--help' || name === '-h' || name === 'help') {
    io.out(SESSION_HELP);
    return 0;
  }
  if (name === 'data') {
    const [verb, ...args] = rest;
    if (verb === '--help' || verb === '-h') {
      io.out(`${commandHelp('data get')}\n${commandHelp('data set')}`);
      return 0;
    }
    const run = verb === undefined ? undefined : DATA_COMMANDS[verb];
    if (!run) throw usage('expected "data get" or "data set"', 'session');
    return runCommand(`data ${verb}`, run, args, io);
  }
  const run = Object.hasOwn(SESSION_COMMANDS, name) ? SESSION_COMMANDS[name] : undefined;
  if (!run) throw usage(`unknown session command ${JSON.stringify(name.slice(0, 40))}`, 'session');
  return runCommand(name, run, rest, io);
}

function runCommand(name: string, run: Command, args: string[], io: Io): Promise<number> {
  if (wantsHelp(args)) {
    io.out(commandHelp(name));
    return Promise.resolve(0);
  }
  return run(args, io);
}

function report(err: unknown, io: Io): number {
  let line: string;
  let code = 1;
  if (isSessionGateError(err)) {
    line = `${err.code}: ${err.message}`;
    if (USAGE_CODES.has(err.code)) code = 2;
  } else {
    line = err instanceof Error ? err.message || err.name : String(err);
  }
  io.err(`sessiongate: ${line.replace(/\s*[\r\n]+\s*/g, ' ').trim()}\n`);
  const debug = io.env.SESSIONGATE_DEBUG;
  if (debug !== undefined && debug !== '' && debug !== '0' && err instanceof Error && err.stack) {
    io.err(`${err.stack}\n`);
  }
  return code;
}
