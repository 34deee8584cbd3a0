import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Logger } from '../core/logger.js';
import type { JsonObject } from '../core/session-types.js';
import { PluginHost, type HostedPlugin, type Invocation } from '../plugins/host.js';
import { loadPlugins } from '../plugins/load.js';
import {
  HOOK_TABLE,
  HOOKS,
  hasHook,
  type ConnectionFacts,
  type HookName,
  type HookResult,
} from '../plugins/types.js';
import { aaResult, credentialResult } from '../plugins/validate-result.js';
import { SessionEngine } from '../session/engine.js';
import { Keyring } from '../session/keyring.js';
import { MemoryStore } from '../store/memory/store.js';
import { expectPositionals, parseCommand, usage } from './args.js';
import type { Io } from './context.js';
import { json, type Json } from './output.js';
import { keyFileOf, loadPluginConfig } from './plugin-config.js';
import type { Command } from './session-commands.js';

/** A JSON object from a flag; the value is never echoed (it may hold a password). */
function objectFlag(
  flag: string,
  value: string | undefined,
  command: string,
): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw usage(`--${flag}: not valid JSON`, command);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw usage(`--${flag}: expected a JSON object`, command);
  }
  return parsed as Record<string, unknown>;
}

/**
 * Plugin output on the command's stderr: what a plugin prints (its stdout/stderr lines, its
 * `ctx.log` messages) as plain lines; other log lines (audit records) with their fields. The
 * host's own "hook failed" line is left out: the JSON result carries the failure.
 */
function stderrLogger(io: Io): Logger {
  const write = (level: string, fields: object, message: string) => {
    const { plugin: _p, hook: _h, sessionId: _s, stream, ...rest } = fields as Record<string, unknown>;
    if (message === 'plugin hook failed') return;
    if (stream !== undefined || Object.keys(rest).length === 0) {
      io.err(`${message}\n`);
      return;
    }
    io.err(`${level === 'info' ? '' : `${level}: `}${message} ${JSON.stringify(rest)}\n`);
  };
  return {
    info: (f, m) => write('info', f, m),
    warn: (f, m) => write('warn', f, m),
    error: (f, m) => write('error', f, m),
  };
}

const COMMAND = 'plugin run';

/** What `plugin run` was asked: the plugin, the hook, where the config is, the hook's input. */
interface RunRequest {
  name: string;
  hook: string;
  configFile: string;
  keyFile: string | undefined;
  sessionId: string;
  facts: Record<string, unknown>;
  cookie: JsonObject;
  sessionCookie: JsonObject;
}

/**
 * `sessiongate plugin run PLUGIN HOOK --config FILE [--args JSON] [--cookie JSON]
 * [--session-cookie JSON]`: one hook call outside the gateway, its result as JSON (docs/plugins.md).
 */
export const pluginRun: Command = async (args, io) => {
  const request = parseRunRequest(args);
  const { hooked, keyring, logger } = await loadForRun(request, io);
  const engine = new SessionEngine({ store: new MemoryStore(), keyring, logger });
  const host = new PluginHost(engine, [hooked.plugin], logger);
  let invocation: Invocation;
  try {
    invocation = await host.invoke(request.name, hooked.hook, request.sessionId, {
      ...(request.facts as ConnectionFacts),
      session_id: request.sessionId,
      cookie: request.cookie,
      session_cookie: request.sessionCookie,
    });
  } finally {
    await host.close();
    await engine.stop();
  }
  const out = runOutput(request, hooked.hook, invocation);
  io.out(json(out));
  return out.ok ? 0 : 1;
};

function parseRunRequest(args: string[]): RunRequest {
  const command = COMMAND;
  const { values, positionals } = parseCommand(
    args,
    {
      args: { type: 'string' },
      cookie: { type: 'string' },
      'session-cookie': { type: 'string' },
      config: { type: 'string' },
      'config-file': { type: 'string' },
      'key-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    { command, redact: true },
  );
  expectPositionals(positionals, ['PLUGIN', 'HOOK'], 2, command);
  const [name, hook] = positionals as [string, string];
  if (values.config !== undefined && values['config-file'] !== undefined) {
    throw usage('give --config FILE or --config-file FILE, not both', command);
  }
  const configFile = values['config-file'] ?? values.config;
  if (configFile === undefined)
    throw usage('missing --config FILE (the gateway config with plugins:)', command);
  const facts = objectFlag('args', values.args, command) ?? {};
  const cookie = objectFlag('cookie', values.cookie, command);
  const sessionCookie = objectFlag('session-cookie', values['session-cookie'], command);
  if (cookie !== undefined && facts.cookie !== undefined)
    throw usage('give the cookie in --cookie or in --args, not both', command);
  if (sessionCookie !== undefined && facts.session_cookie !== undefined) {
    throw usage('give the session cookie in --session-cookie or in --args, not both', command);
  }
  const sessionId = facts.session_id ?? randomBytes(16).toString('hex');
  if (typeof sessionId !== 'string' || sessionId === '')
    throw usage('--args: session_id must be a string', command);
  return {
    name,
    hook,
    configFile,
    keyFile: values['key-file'],
    sessionId,
    facts,
    cookie: (cookie ?? facts.cookie ?? {}) as JsonObject,
    sessionCookie: (sessionCookie ?? facts.session_cookie ?? {}) as JsonObject,
  };
}

/** Builds the named plugin from the config and checks that its kind has the hook. */
async function loadForRun(request: RunRequest, io: Io) {
  const { name, hook, configFile } = request;
  const config = loadPluginConfig(configFile, io.cwd);
  const spec = config.plugins.find((p) => p.name === name);
  if (!spec) {
    const known = config.plugins.map((p) => p.name).join(', ') || 'none';
    throw usage(
      `no plugin named ${JSON.stringify(name.slice(0, 60))} in ${configFile} (configured: ${known})`,
      COMMAND,
    );
  }
  const keyFile = keyFileOf({ keyFile: request.keyFile, configFile }, io.cwd);
  const keyring = existsSync(keyFile) ? Keyring.loadOrCreate(keyFile) : Keyring.ephemeral();
  const logger = stderrLogger(io);
  const [plugin] = (await loadPlugins([spec], { baseDir: config.dir, keyring, logger })) as [HostedPlugin];
  const kind = plugin.runtime.kind;
  if (!hasHook(kind, hook)) {
    await plugin.runtime.close();
    throw usage(
      `${JSON.stringify(hook.slice(0, 40))} is not a hook of ${kind} plugins (${HOOKS[kind].join(', ')})`,
      COMMAND,
    );
  }
  return { hooked: { plugin, hook }, keyring, logger };
}

/**
 * The JSON printed: ok, plugin, hook, session id, the checked result (the failure default when
 * the plugin failed or answered malformed), the cookies after the call, and the failure if any.
 */
function runOutput(request: RunRequest, hook: HookName, invocation: Invocation): { [key: string]: Json } {
  let ok = invocation.ok;
  let failure = invocation.ok ? undefined : { failure: invocation.failure, message: invocation.message };
  let result: Record<string, unknown>;
  try {
    result = checkedResult(hook, invocation.ok ? invocation.result : undefined, invocation.ok);
  } catch (err) {
    ok = false;
    failure = { failure: 'malformed', message: (err as Error).message };
    result = checkedResult(hook, undefined, false);
  }
  const out: { [key: string]: Json } = { ok, plugin: request.name, hook, session_id: request.sessionId };
  Object.assign(out, result as { [key: string]: Json });
  out.ok = ok;
  out.cookie = (invocation.ok ? invocation.cookie : undefined) ?? request.cookie;
  out.session_cookie = (invocation.ok ? invocation.sessionCookie : undefined) ?? request.sessionCookie;
  if (failure) Object.assign(out, failure);
  return out;
}

/** The result fields a hook answers with, checked; without a result, the failure default. */
function checkedResult(hook: HookName, result: HookResult, answered: boolean): Record<string, unknown> {
  const answer = HOOK_TABLE[hook].answer;
  if (answer === 'verdict') return answered ? { ...aaResult(result) } : { verdict: 'DENY' };
  if (hook === 'get_password_list')
    return { passwords: answered ? (credentialResult(result).passwords ?? []) : [] };
  if (hook === 'get_private_key_list')
    return { private_keys: answered ? (credentialResult(result).private_keys ?? []) : [] };
  return {};
}
