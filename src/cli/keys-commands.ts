import { Keyring } from '../session/keyring.js';
import { expectPositionals, parseCommand, usage } from './args.js';
import type { Io } from './context.js';
import { json, table, text } from './output.js';
import { keyFileOf } from './plugin-config.js';
import type { Command } from './session-commands.js';

// `sessiongate keys ...`: the identity assertion's signing keys in the key ring
// (docs/identity.md#keys-and-rotation). Never prints key material.

const OPTIONS = {
  config: { type: 'string' },
  'config-file': { type: 'string' },
  'key-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function keyFile(
  values: {
    config?: string | undefined;
    'config-file'?: string | undefined;
    'key-file'?: string | undefined;
  },
  io: Io,
  command: string,
): string {
  if (values.config !== undefined && values['config-file'] !== undefined) {
    throw usage('give --config FILE or --config-file FILE, not both', command);
  }
  const configFile = values['config-file'] ?? values.config;
  return keyFileOf({ keyFile: values['key-file'], configFile }, io.cwd);
}

/** `keys list [--json]`: the signing keys (id, created, active); the file is made if missing. */
export const keysList: Command = async (args, io) => {
  const command = 'keys list';
  const { values, positionals } = parseCommand(args, { ...OPTIONS, json: { type: 'boolean' } }, { command });
  expectPositionals(positionals, [], 0, command);
  const ring = Keyring.loadOrCreate(keyFile(values, io, command));
  const keys = ring.signing.keys.map((k) => ({
    id: k.id,
    alg: k.alg,
    created: k.created,
    active: k.id === ring.signing.active?.id,
  }));
  if (values.json) {
    io.out(json(keys));
    return 0;
  }
  const rows = [['ID', 'ALG', 'CREATED', 'ACTIVE']];
  for (const k of keys) rows.push([text(k.id), k.alg, text(k.created), k.active ? 'yes' : '']);
  io.out(table(rows));
  return 0;
};

/** `keys rotate-signing`: a new active signing key; prints its id. */
export const keysRotateSigning: Command = async (args, io) => {
  const command = 'keys rotate-signing';
  const { values, positionals } = parseCommand(args, OPTIONS, { command });
  expectPositionals(positionals, [], 0, command);
  const path = keyFile(values, io, command);
  Keyring.loadOrCreate(path);
  io.out(`${Keyring.rotateSigning(path)}\n`);
  return 0;
};

/** `keys remove-signing ID`: an old signing key leaves the file (and the JWKS at the next start). */
export const keysRemoveSigning: Command = async (args, io) => {
  const command = 'keys remove-signing';
  const { values, positionals } = parseCommand(args, OPTIONS, { command });
  expectPositionals(positionals, ['ID'], 1, command);
  Keyring.removeSigning(keyFile(values, io, command), positionals[0]!);
  return 0;
};

export const KEYS_COMMANDS: Record<string, Command> = {
  list: keysList,
  'rotate-signing': keysRotateSigning,
  'remove-signing': keysRemoveSigning,
};
