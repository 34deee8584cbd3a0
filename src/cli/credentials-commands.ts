import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SessionGateError } from '../core/errors.js';
import {
  credentialKey,
  parseCredentialKey,
  readCredentials,
  writeCredentials,
} from '../plugins/builtin/credentials-file.js';
import { Keyring } from '../session/keyring.js';
import { expectPositionals, parseCommand, usage } from './args.js';
import type { Io } from './context.js';
import { json, table, text } from './output.js';
import { builtinFile, keyFileOf } from './plugin-config.js';
import type { Command } from './session-commands.js';

export const DEFAULT_CREDENTIALS_FILE = './var/credentials.json';

const OPTIONS = {
  file: { type: 'string' },
  config: { type: 'string' },
  'config-file': { type: 'string' },
  'key-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface Flags {
  file?: string | undefined;
  config?: string | undefined;
  'config-file'?: string | undefined;
  'key-file'?: string | undefined;
}

/** The credentials file and the key ring that seals it. */
function target(values: Flags, io: Io, command: string): { path: string; keyring: Keyring } {
  if (values.config !== undefined && values['config-file'] !== undefined) {
    throw usage('give --config FILE or --config-file FILE, not both', command);
  }
  const configFile = values['config-file'] ?? values.config;
  const path = builtinFile(
    { file: values.file, configFile },
    io.cwd,
    'file-credentials',
    'credentials_file',
    DEFAULT_CREDENTIALS_FILE,
  );
  const keyring = Keyring.loadOrCreate(keyFileOf({ keyFile: values['key-file'], configFile }, io.cwd));
  return { path, keyring };
}

function read(path: string, keyring: Keyring) {
  try {
    return readCredentials(path, keyring);
  } catch (err) {
    throw new SessionGateError('SG_ERR_CONFIG', (err as Error).message);
  }
}

function keyArg(positionals: string[], command: string): string {
  expectPositionals(positionals, ['ACCOUNT@ASSET'], 1, command);
  const parsed = parseCredentialKey(positionals[0]!);
  if (!parsed) throw usage('expected ACCOUNT@ASSET (no spaces or control characters)', command);
  return credentialKey(parsed.account, parsed.asset);
}

export const credentialsSet: Command = async (args, io) => {
  const command = 'credentials set';
  const { values, positionals } = parseCommand(
    args,
    {
      ...OPTIONS,
      'password-stdin': { type: 'boolean' },
      'private-key-file': { type: 'string' },
      'key-type': { type: 'string' },
    },
    { command },
  );
  const key = keyArg(positionals, command);
  const keyFile = values['private-key-file'];
  if ((values['password-stdin'] ?? false) === (keyFile !== undefined)) {
    throw usage('give --password-stdin or --private-key-file FILE --key-type TYPE', command);
  }
  if (keyFile !== undefined && values['key-type'] === undefined)
    throw usage('--key-type is required (e.g. ssh-rsa)', command);
  if (values['key-type'] !== undefined && !/^[a-z0-9][a-z0-9@.-]{0,63}$/.test(values['key-type'])) {
    throw usage('--key-type: e.g. ssh-rsa, ssh-ed25519, ecdsa-sha2-nistp256', command);
  }
  const { path, keyring } = target(values, io, command);
  const entries = read(path, keyring);
  const entry = entries.get(key) ?? { passwords: [], private_keys: [] };
  if (keyFile !== undefined) {
    let pem: string;
    try {
      pem = readFileSync(resolve(io.cwd, keyFile), 'utf8');
    } catch (err) {
      throw new Error(
        `--private-key-file: cannot read ${keyFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        {
          cause: err,
        },
      );
    }
    if (!/^-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/m.test(pem)) {
      throw new Error(`--private-key-file: ${keyFile} is not a PEM private key`);
    }
    entry.private_keys = [[values['key-type']!, pem]];
  } else {
    if (!io.readStdin) throw usage('--password-stdin: no standard input here', command);
    const password = (await io.readStdin()).replace(/\r?\n$/, '');
    if (password === '') throw usage('--password-stdin: the password is empty', command);
    entry.passwords = [password];
  }
  entries.set(key, entry);
  writeCredentials(path, keyring, entries);
  return 0;
};

export const credentialsList: Command = async (args, io) => {
  const command = 'credentials list';
  const { values, positionals } = parseCommand(args, { ...OPTIONS, json: { type: 'boolean' } }, { command });
  expectPositionals(positionals, [], 0, command);
  const { path, keyring } = target(values, io, command);
  const entries = [...read(path, keyring)];
  if (values.json) {
    io.out(
      json(
        entries.map(([name, e]) => ({
          name,
          passwords: e.passwords.length,
          private_keys: e.private_keys.map(([type]) => type),
        })),
      ),
    );
    return 0;
  }
  const rows = [['ACCOUNT@ASSET', 'PASSWORDS', 'PRIVATE_KEYS']];
  for (const [name, e] of entries) {
    const types = e.private_keys.map(([type]) => text(type)).join(',');
    rows.push([text(name), String(e.passwords.length), types === '' ? '-' : types]);
  }
  io.out(table(rows));
  return 0;
};

export const credentialsRemove: Command = async (args, io) => {
  const command = 'credentials remove';
  const { values, positionals } = parseCommand(args, OPTIONS, { command });
  const key = keyArg(positionals, command);
  const { path, keyring } = target(values, io, command);
  const entries = read(path, keyring);
  if (!entries.delete(key)) throw new Error(`no entry ${key} in ${path}`);
  writeCredentials(path, keyring, entries);
  return 0;
};

export const CREDENTIALS_COMMANDS: Record<string, Command> = {
  set: credentialsSet,
  list: credentialsList,
  remove: credentialsRemove,
};
