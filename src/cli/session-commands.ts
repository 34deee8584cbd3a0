import { SessionGateError, sessionNotFound } from '../core/errors.js';
import { idOfToken } from '../core/ids.js';
import { AdminClient, sessionPath, type ApiSession } from './admin-client.js';
import {
  expectPositionals,
  GLOBAL_OPTIONS,
  parseCommand,
  parseIdArg,
  parseIpFlag,
  parseSecondsFlag,
  parseStateFlag,
  parseTokenFlag,
  parseUserFlag,
  usage,
} from './args.js';
import { withEngine, type GlobalFlags, type Io } from './context.js';
import { json, sessionDeadlines } from './output.js';

/** A session command: its arguments after the command name, and where to write. */
export type Command = (args: string[], io: Io) => Promise<number>;

/** The global flags of a command parsed with GLOBAL_OPTIONS. */
export function globalsOf(values: {
  store?: string | undefined;
  config?: string | boolean | undefined;
  'config-file'?: string | undefined;
  'key-file'?: string | undefined;
}): GlobalFlags {
  const fromConfig = typeof values.config === 'string' ? values.config : undefined;
  if (fromConfig !== undefined && values['config-file'] !== undefined) {
    throw usage('give --config FILE or --config-file FILE, not both');
  }
  return {
    store: values.store,
    configFile: values['config-file'] ?? fromConfig,
    keyFile: values['key-file'],
  };
}

/** The flags that choose between the store and a running gateway's admin API. */
export interface TargetFlags {
  store?: string | undefined;
  config?: string | boolean | undefined;
  'config-file'?: string | undefined;
  'key-file'?: string | undefined;
  url?: string | undefined;
  'token-file'?: string | undefined;
}

/** The admin API client when --url is given (store flags are refused then); undefined otherwise. */
export function apiOf(values: TargetFlags, io: Io, command: string): AdminClient | undefined {
  if (values.url === undefined) {
    if (values['token-file'] !== undefined) throw usage('--token-file goes with --url URL', command);
    return undefined;
  }
  if (
    values.store !== undefined ||
    typeof values.config === 'string' ||
    values['config-file'] !== undefined ||
    values['key-file'] !== undefined
  ) {
    throw usage('--url acts through a running gateway: leave out --store, --config and --key-file', command);
  }
  return AdminClient.from(values.url, values['token-file'], io, command);
}

export const create: Command = async (args, io) => {
  const command = 'session create';
  const { values, positionals } = parseCommand(
    args,
    {
      ...GLOBAL_OPTIONS,
      timeout: { type: 'string' },
      lifetime: { type: 'string' },
      user: { type: 'string' },
      'client-ip': { type: 'string' },
      state: { type: 'string' },
      json: { type: 'boolean' },
    },
    { command },
  );
  expectPositionals(positionals, [], 0, command);
  const options = {
    timeout: parseSecondsFlag('timeout', values.timeout),
    lifetime: parseSecondsFlag('lifetime', values.lifetime),
    user: parseUserFlag(values.user),
    clientIp: parseIpFlag(values['client-ip']),
    state: parseStateFlag(values.state) ?? 'allow',
  };
  const api = apiOf(values, io, command);
  const created = api
    ? await api.call<{ id: string; token: string }>('POST', '/api/v1/sessions', {
        timeout: options.timeout,
        lifetime: options.lifetime,
        user: options.user,
        client_ip: options.clientIp,
        state: options.state,
      })
    : await withEngine(globalsOf(values), io, (engine) => engine.create(options));
  io.out(values.json ? json({ id: created.id, token: created.token }) : `${created.token}\n`);
  return 0;
};

export const exists: Command = async (args, io) => {
  const command = 'session exists';
  const { values, positionals } = parseCommand(
    args,
    { ...GLOBAL_OPTIONS, token: { type: 'string' }, state: { type: 'string' } },
    { command, redact: true },
  );
  expectPositionals(positionals, ['ID'], 0, command);
  const state = parseStateFlag(values.state);
  const given = positionals[0];
  if (given !== undefined && values.token !== undefined)
    throw usage('give either ID or --token TOKEN, not both', command);
  if (given === undefined && values.token === undefined)
    throw usage('missing ID (or --token TOKEN)', command);
  const id = given !== undefined ? parseIdArg(given, command) : undefined;
  const token = id === undefined ? parseTokenFlag(values.token ?? '') : undefined;
  const api = apiOf(values, io, command);
  if (api) {
    // The token never travels: its id is computed here.
    const s = await api.find<ApiSession>(sessionPath(id ?? idOfToken(token!)));
    io.out(s !== undefined && (state === undefined || s.state === state) ? 'true\n' : 'false\n');
    return 0;
  }
  const found = await withEngine(globalsOf(values), io, (engine) =>
    token !== undefined ? engine.exists(token, { state }) : engine.existsById(id ?? '', { state }),
  );
  io.out(found ? 'true\n' : 'false\n');
  return 0;
};

export const modify: Command = async (args, io) => {
  const command = 'session modify';
  const { values, positionals } = parseCommand(
    args,
    {
      ...GLOBAL_OPTIONS,
      timeout: { type: 'string' },
      lifetime: { type: 'string' },
      remaining: { type: 'string' },
      json: { type: 'boolean' },
    },
    { command },
  );
  expectPositionals(positionals, ['ID'], 1, command);
  const id = parseIdArg(positionals[0], command);
  const timeout = parseSecondsFlag('timeout', values.timeout);
  const lifetime = parseSecondsFlag('lifetime', values.lifetime);
  const remaining = parseSecondsFlag('remaining', values.remaining);
  if (lifetime !== undefined && remaining !== undefined) {
    throw new SessionGateError(
      'SG_ERR_LIFETIME_WITH_REMAINING',
      '--lifetime and --remaining cannot be used together',
    );
  }
  if (timeout === undefined && lifetime === undefined && remaining === undefined) {
    throw usage('nothing to change: give --timeout, --lifetime or --remaining', command);
  }
  const api = apiOf(values, io, command);
  if (api) {
    const s = await api.call<ApiSession>('PATCH', sessionPath(id), { timeout, lifetime, remaining });
    if (values.json) {
      const { idle_timeout, lifetime: life, expires_at, lifetime_expires_at } = s;
      io.out(json({ id: s.id, idle_timeout, lifetime: life, expires_at, lifetime_expires_at }));
    }
    return 0;
  }
  const record = await withEngine(globalsOf(values), io, async (engine) => {
    if (!(await engine.get(id))) throw sessionNotFound(id);
    return engine.modify(id, { timeout, lifetime, remaining });
  });
  if (values.json) io.out(json(sessionDeadlines(record)));
  return 0;
};

export const remove: Command = async (args, io) => {
  const command = 'session remove';
  const { values, positionals } = parseCommand(args, GLOBAL_OPTIONS, { command });
  expectPositionals(positionals, ['ID'], 1, command);
  const id = parseIdArg(positionals[0], command);
  const api = apiOf(values, io, command);
  if (api) {
    await api.call('DELETE', `${sessionPath(id)}?reason=removed`);
    return 0;
  }
  await withEngine(globalsOf(values), io, async (engine) => {
    // An expired session is left to the sweeper, which closes it with its expiry reason.
    if (!(await engine.get(id)) || !(await engine.remove(id))) throw sessionNotFound(id);
  });
  return 0;
};
