import QRCode from 'qrcode';
import { SessionGateError } from '../core/errors.js';
import { generatePassword, hashPassword, passwordProblem } from '../plugins/builtin/password.js';
import { enrolTotp } from '../plugins/builtin/totp.js';
import { isUserName, UsersFileEditor, UsersFileError } from '../plugins/builtin/users-file.js';
import { Keyring } from '../session/keyring.js';
import { expectPositionals, parseCommand, usage } from './args.js';
import type { Io } from './context.js';
import { json, table, text } from './output.js';
import { endSessions, sessionsTarget } from './passwd-sessions.js';
import { builtinFile, keyFileOf } from './plugin-config.js';
import type { Command } from './session-commands.js';

export const DEFAULT_USERS_FILE = './var/users.yaml';

/** Options every `users` command takes. */
const USERS_OPTIONS = {
  file: { type: 'string' },
  config: { type: 'string' },
  'config-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface FileFlags {
  file?: string | undefined;
  config?: string | undefined;
  'config-file'?: string | undefined;
}

function configOf(values: FileFlags, command: string): string | undefined {
  if (values.config !== undefined && values['config-file'] !== undefined) {
    throw usage('give --config FILE or --config-file FILE, not both', command);
  }
  return values['config-file'] ?? values.config;
}

function usersPath(values: FileFlags, io: Io, command: string): string {
  const configFile = configOf(values, command);
  return builtinFile(
    { file: values.file, configFile },
    io.cwd,
    'local-users',
    'users_file',
    DEFAULT_USERS_FILE,
  );
}

/** Open the users file; its problems are one-line config errors. */
function open(path: string): UsersFileEditor {
  try {
    return UsersFileEditor.open(path);
  } catch (err) {
    if (err instanceof UsersFileError) throw new SessionGateError('SG_ERR_CONFIG', err.message);
    throw err;
  }
}

function userArg(positionals: string[], command: string): string {
  expectPositionals(positionals, ['NAME'], 1, command);
  const name = positionals[0]!;
  if (!isUserName(name)) {
    throw usage(
      'NAME: letters, digits and ._@+- only, starting with a letter or digit, at most 128 characters',
      command,
    );
  }
  return name;
}

function existing(editor: UsersFileEditor, name: string): void {
  if (!editor.get(name)) throw new Error(`no user ${name} in ${editor.path}`);
}

/** The password from standard input (one trailing newline removed), or a new random one. */
async function passwordFrom(
  fromStdin: boolean,
  io: Io,
  command: string,
): Promise<{ password: string; generated: boolean }> {
  if (!fromStdin) return { password: generatePassword(), generated: true };
  if (!io.readStdin) throw usage('--password-stdin: no standard input here', command);
  const password = (await io.readStdin()).replace(/\r?\n$/, '');
  const problem = passwordProblem(password);
  if (problem !== undefined) throw usage(`--password-stdin: ${problem}`, command);
  return { password, generated: false };
}

function groupsFlag(value: string | undefined, command: string): string[] | undefined {
  if (value === undefined) return undefined;
  const groups = value
    .split(',')
    .map((g) => g.trim())
    .filter((g) => g !== '');
  if (groups.some((g) => /\p{Cc}/u.test(g) || g.length > 256)) {
    throw usage('--groups: comma-separated names without control characters', command);
  }
  return [...new Set(groups)];
}

export const usersAdd: Command = async (args, io) => {
  const command = 'users add';
  const { values, positionals } = parseCommand(
    args,
    { ...USERS_OPTIONS, 'password-stdin': { type: 'boolean' }, groups: { type: 'string' } },
    { command },
  );
  const name = userArg(positionals, command);
  const groups = groupsFlag(values.groups, command);
  const editor = open(usersPath(values, io, command));
  if (editor.get(name))
    throw new Error(`user ${name} exists in ${editor.path} (to change the password: users passwd)`);
  const { password, generated } = await passwordFrom(values['password-stdin'] ?? false, io, command);
  editor.set(name, { password: await hashPassword(password), groups: groups ?? [] });
  editor.save();
  if (generated) io.out(`${password}\n`);
  return 0;
};

/**
 * `users passwd NAME`: a new password, then the user's other sessions end (ASVS 3.3.3), in the
 * store or through `--url`; `--keep-sessions` leaves them. The new password is printed first,
 * so a failure to end the sessions never loses it.
 */
export const usersPasswd: Command = async (args, io) => {
  const command = 'users passwd';
  const { values, positionals } = parseCommand(
    args,
    {
      ...USERS_OPTIONS,
      'password-stdin': { type: 'boolean' },
      'keep-sessions': { type: 'boolean' },
      store: { type: 'string' },
      url: { type: 'string' },
      'token-file': { type: 'string' },
    },
    { command },
  );
  const name = userArg(positionals, command);
  const target = sessionsTarget(values, configOf(values, command), io, command);
  const editor = open(usersPath(values, io, command));
  existing(editor, name);
  const { password, generated } = await passwordFrom(values['password-stdin'] ?? false, io, command);
  editor.set(name, { password: await hashPassword(password) });
  editor.save();
  if (generated) io.out(`${password}\n`);
  if (target.kind === 'keep') return 0;
  let ended: { closed: number; note?: string };
  try {
    ended = await endSessions(target, name);
  } catch (err) {
    const why = err instanceof SessionGateError ? `${err.code}: ${err.message}` : (err as Error).message;
    throw new Error(
      `the password of ${name} was changed, but their sessions were not ended (${why}); ` +
        `end them with: sessiongate session kill --user ${name}`,
      { cause: err },
    );
  }
  const count = `${ended.closed} session${ended.closed === 1 ? '' : 's'}`;
  io.err(`sessiongate: ended ${count} of ${name}${ended.note ? ` (${ended.note})` : ''}\n`);
  return 0;
};

export const usersRemove: Command = async (args, io) => {
  const command = 'users remove';
  const { values, positionals } = parseCommand(args, USERS_OPTIONS, { command });
  const name = userArg(positionals, command);
  const editor = open(usersPath(values, io, command));
  existing(editor, name);
  editor.remove(name);
  editor.save();
  return 0;
};

export const usersList: Command = async (args, io) => {
  const command = 'users list';
  const { values, positionals } = parseCommand(
    args,
    { ...USERS_OPTIONS, json: { type: 'boolean' } },
    { command },
  );
  expectPositionals(positionals, [], 0, command);
  const users = [...open(usersPath(values, io, command)).list()];
  if (values.json) {
    io.out(
      json(
        users.map(([name, u]) => ({
          name,
          groups: u.groups,
          disabled: u.disabled,
          password: u.password !== undefined,
          totp: u.totp !== undefined,
        })),
      ),
    );
    return 0;
  }
  const rows = [['NAME', 'GROUPS', 'DISABLED', 'PASSWORD', 'TOTP']];
  for (const [name, u] of users) {
    rows.push([
      text(name),
      u.groups.length > 0 ? u.groups.map(text).join(',') : '-',
      u.disabled ? 'yes' : 'no',
      u.password !== undefined ? 'set' : '-',
      u.totp !== undefined ? 'enrolled' : '-',
    ]);
  }
  io.out(table(rows));
  return 0;
};

export const usersTotp: Command = async (args, io) => {
  const command = 'users totp';
  const { values, positionals } = parseCommand(
    args,
    {
      ...USERS_OPTIONS,
      'key-file': { type: 'string' },
      issuer: { type: 'string' },
      'no-qr': { type: 'boolean' },
    },
    { command },
  );
  const name = userArg(positionals, command);
  const issuer = values.issuer ?? 'sessiongate';
  if (issuer === '' || issuer.includes(':') || /\p{Cc}/u.test(issuer)) {
    throw usage('--issuer: a non-empty name without ":" or control characters', command);
  }
  const editor = open(usersPath(values, io, command));
  existing(editor, name);
  const keyring = Keyring.loadOrCreate(
    keyFileOf({ keyFile: values['key-file'], configFile: configOf(values, command) }, io.cwd),
  );
  const uri = enrolTotp(editor, name, keyring, issuer);
  editor.save();
  // The QR code first, the URI last: `| tail -n 1` (or --no-qr) gives scripts the URI alone.
  if (!values['no-qr']) io.out(`${await QRCode.toString(uri, { type: 'terminal', small: true })}\n`);
  io.out(`${uri}\n`);
  return 0;
};

export const USERS_COMMANDS: Record<string, Command> = {
  add: usersAdd,
  passwd: usersPasswd,
  remove: usersRemove,
  list: usersList,
  totp: usersTotp,
};
