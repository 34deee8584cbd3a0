import { isIP } from 'node:net';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SessionGateError, type ErrorCode } from '../core/errors.js';
import { isSessionId, isToken, type SessionId, type SessionToken } from '../core/ids.js';
import { SESSION_STATES, type SessionState } from '../core/session-types.js';

/**
 * Catalogue codes that mean "the command line is wrong": the CLI exits with 2 for these
 * (and for flag errors), with 1 for everything else.
 */
export const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SG_ERR_USAGE',
  'SG_ERR_INVALID_SESSION_ID',
  'SG_ERR_INVALID_TOKEN',
  'SG_ERR_INVALID_TIMEOUT',
  'SG_ERR_INVALID_STATE',
  'SG_ERR_INVALID_VARIABLE_NAME',
  'SG_ERR_LIFETIME_WITH_REMAINING',
]);

/** A usage error (exit 2); `command` adds a pointer to its help. */
export function usage(message: string, command?: string): SessionGateError {
  const hint = command !== undefined ? ` (see: sessiongate ${command ? `${command} ` : ''}--help)` : '';
  return new SessionGateError('SG_ERR_USAGE', message + hint);
}

/**
 * Options every session command takes. `--config FILE` is the gateway config file, except in
 * `data get`, where `--config` is APM's flag (read the profile configuration); `--config-file`
 * works everywhere.
 */
export const GLOBAL_OPTIONS = {
  store: { type: 'string' },
  config: { type: 'string' },
  'config-file': { type: 'string' },
  'key-file': { type: 'string' },
  /** Act through a running gateway's admin API instead of opening the store. */
  url: { type: 'string' },
  'token-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Numeric flags: `--timeout -5` is rewritten to `--timeout=-5` so the error names the value. */
const NUMERIC_FLAGS = new Set(['--timeout', '--lifetime', '--remaining']);

export interface ParseOptions {
  /** The command's name for help hints, e.g. `session create`. */
  command: string;
  /** Never echo argument text in errors (the command line may carry a secure value). */
  redact?: boolean;
}

/** `parseArgs` with strict flags and positionals; its errors become one-line usage errors. */
export function parseCommand<T extends ParseArgsConfig['options']>(
  args: string[],
  options: T,
  how: ParseOptions,
): {
  values: ReturnType<typeof parseArgs<{ options: T; strict: true; allowPositionals: true }>>['values'];
  positionals: string[];
} {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (arg === '--') {
      joined.push(...args.slice(i));
      break;
    }
    if (NUMERIC_FLAGS.has(arg) && next !== undefined && /^-\d/.test(next)) {
      joined.push(`${arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  try {
    const parsed = parseArgs({ args: joined, options, strict: true, allowPositionals: true });
    return { values: parsed.values, positionals: parsed.positionals };
  } catch (err) {
    throw usage(flagErrorMessage(err, how.redact ?? false), how.command);
  }
}

function flagErrorMessage(err: unknown, redact: boolean): string {
  const e = err as { code?: string; message?: string };
  const message = String(e.message ?? err);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const name = /Unknown option '([^']*)'/.exec(message)?.[1];
    const tail = "; a value starting with '-' goes after '--'";
    return redact || name === undefined ? `unknown option${tail}` : `unknown option ${name}${tail}`;
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const name = /Option '(--[a-z-]+)/.exec(message)?.[1] ?? 'an option';
    if (message.includes('ambiguous')) {
      return `${name} needs a value; to give a value starting with '-', write ${name}=VALUE`;
    }
    if (message.includes('argument missing')) return `${name} needs a value`;
    if (message.includes('does not take an argument')) return `${name} does not take a value`;
  }
  return message.split('\n')[0] ?? 'invalid arguments';
}

/** The most seconds a timeout may be: 100 years keeps every deadline a valid date. */
export const MAX_SECONDS = 3_153_600_000;

/** A whole number of seconds >= 0 from a flag, or undefined when the flag was not given. */
export function parseSecondsFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    const shown = value.length > 24 ? `${value.slice(0, 24)}...` : value;
    throw new SessionGateError(
      'SG_ERR_INVALID_TIMEOUT',
      `--${flag}: expected a whole number of seconds >= 0, got ${shown === '' ? '""' : shown}`,
    );
  }
  const n = Number(value);
  if (n > MAX_SECONDS) {
    throw new SessionGateError(
      'SG_ERR_INVALID_TIMEOUT',
      `--${flag}: at most ${MAX_SECONDS} seconds (100 years), got ${value}`,
    );
  }
  return n;
}

export function parseStateFlag(value: string | undefined): SessionState | undefined {
  if (value === undefined) return undefined;
  if (!(SESSION_STATES as readonly string[]).includes(value)) {
    throw new SessionGateError(
      'SG_ERR_INVALID_STATE',
      `--state: expected one of ${SESSION_STATES.join(', ')}, got ${JSON.stringify(value.slice(0, 24))}`,
    );
  }
  return value as SessionState;
}

/** A session id argument; never echoes the argument (it may be a token put in the wrong place). */
export function parseIdArg(value: string | undefined, command: string): SessionId {
  if (value === undefined) throw usage('missing session ID', command);
  const lower = /^[0-9A-F]{32}$/i.test(value) ? value.toLowerCase() : value;
  if (isSessionId(lower)) return lower;
  if (isToken(value)) {
    throw new SessionGateError(
      'SG_ERR_INVALID_SESSION_ID',
      'expected a session id (32 hex characters) but got a session token' +
        (command === 'session exists'
          ? '; pass a token with --token TOKEN'
          : '; commands take the id, not the token'),
    );
  }
  throw new SessionGateError(
    'SG_ERR_INVALID_SESSION_ID',
    `malformed session id (expected 32 hex characters, got ${value.length} characters)`,
  );
}

/** The `--token` value of `session exists`; never echoes it. */
export function parseTokenFlag(value: string): SessionToken {
  if (isToken(value)) return value;
  if (isSessionId(value.toLowerCase())) {
    throw new SessionGateError(
      'SG_ERR_INVALID_TOKEN',
      '--token expects a session token but got a session id; pass the id as the positional argument',
    );
  }
  throw new SessionGateError(
    'SG_ERR_INVALID_TOKEN',
    '--token: malformed session token (expected 43 base64url characters)',
  );
}

export function parseIpFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (isIP(value) === 0)
    throw usage(`--client-ip: expected an IPv4 or IPv6 address, got ${JSON.stringify(value.slice(0, 48))}`);
  return value;
}

export function parseUserFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (value === '' || value.length > 256 || /\p{Cc}/u.test(value)) {
    throw usage('--user: expected a non-empty name of at most 256 characters without control characters');
  }
  return value;
}

/** Exactly `min`..`max` positionals, else a usage error naming what is missing or extra. */
export function expectPositionals(
  positionals: string[],
  names: string[],
  min: number,
  command: string,
): void {
  if (positionals.length < min) {
    throw usage(`missing ${names.slice(positionals.length, min).join(' and ')}`, command);
  }
  if (positionals.length > names.length) {
    throw usage(`too many arguments (expected ${names.join(' ')})`, command);
  }
}

/** True when `--help`/`-h` appears before any `--`. */
export function wantsHelp(args: string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}
