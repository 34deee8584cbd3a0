import { isSessionGateError, SessionGateError } from '../core/errors.js';
import { checkVariableName } from '../session/variables.js';
import { expectPositionals, GLOBAL_OPTIONS, parseCommand, parseIdArg, usage } from './args.js';
import { withEngine } from './context.js';
import { sessionPath } from './admin-client.js';
import { apiOf, globalsOf, type Command } from './session-commands.js';

/** In `data get`, `--config` is APM's flag; the config file is `--config-file` there. */
const GET_OPTIONS = {
  ...GLOBAL_OPTIONS,
  config: { type: 'boolean' },
  secure: { type: 'boolean' },
} as const;

/**
 * Check a variable name before anything is opened. With `--secure` the argument is never
 * echoed: a name and a value swapped by mistake must not print the secret.
 */
function variableName(key: string, secure: boolean): string {
  try {
    checkVariableName(key);
  } catch (err) {
    if (secure && isSessionGateError(err, 'SG_ERR_INVALID_VARIABLE_NAME')) {
      throw new SessionGateError(
        'SG_ERR_INVALID_VARIABLE_NAME',
        'invalid variable name (not shown, --secure was given): use dotted words such as session.custom.x',
      );
    }
    throw err;
  }
  return key;
}

export const dataGet: Command = async (args, io) => {
  const command = 'session data get';
  const { values, positionals } = parseCommand(args, GET_OPTIONS, { command });
  if (values.config && positionals.length === 3) {
    throw usage(
      'in data get, --config reads a profile setting; give the config file with --config-file FILE',
      command,
    );
  }
  expectPositionals(positionals, ['ID', 'KEY'], 2, command);
  if (values.secure && values.config) throw usage('--secure and --config cannot be used together', command);
  const id = parseIdArg(positionals[0], command);
  const key = positionals[1]!;
  const secure = values.secure ?? false;
  const config = values.config ?? false;
  if (!config) variableName(key, secure);
  const api = apiOf(values, io, command);
  const value = await (async () => {
    try {
      if (api) {
        const flags = secure ? '?secure=1' : config ? '?config=1' : '';
        const path = `${sessionPath(id)}/variables/${encodeURIComponent(key)}${flags}`;
        return (await api.call<{ value: string | null }>('GET', path)).value ?? undefined;
      }
      return await withEngine(globalsOf({ ...values, config: undefined }), io, (engine) =>
        engine.data.get(id, key, { secure, config }),
      );
    } catch (err) {
      if (isSessionGateError(err, 'SG_ERR_SECURE_FLAG_REQUIRED')) {
        throw new SessionGateError(
          'SG_ERR_SECURE_FLAG_REQUIRED',
          `${key} is a secure variable: read it with --secure`,
        );
      }
      throw err;
    }
  })();
  io.out(`${value ?? ''}\n`);
  return 0;
};

export const dataSet: Command = async (args, io) => {
  const command = 'session data set';
  const { values, positionals } = parseCommand(
    args,
    { ...GLOBAL_OPTIONS, secure: { type: 'boolean' } },
    { command, redact: true },
  );
  expectPositionals(positionals, ['ID', 'KEY', 'VALUE'], 2, command);
  const id = parseIdArg(positionals[0], command);
  const secure = values.secure ?? false;
  const key = variableName(positionals[1]!, secure);
  const value = positionals[2] ?? '';
  const api = apiOf(values, io, command);
  await (async () => {
    try {
      if (api) {
        await api.call('PUT', `${sessionPath(id)}/variables/${encodeURIComponent(key)}`, { value, secure });
        return;
      }
      await withEngine(globalsOf(values), io, (engine) => engine.data.set(id, key, value, { secure }));
    } catch (err) {
      // The two timeout variables parse their value; its error quotes it. Not with --secure.
      if (secure && isSessionGateError(err, 'SG_ERR_INVALID_TIMEOUT')) {
        throw new SessionGateError('SG_ERR_INVALID_TIMEOUT', `${key} must be a whole number of seconds >= 0`);
      }
      throw err;
    }
  })();
  return 0;
};
