import { isExpired } from '../core/deadline.js';
import { sessionNotFound } from '../core/errors.js';
import type { SessionRecord } from '../core/session-types.js';
import { recordOfApi, sessionPath, type ApiSession } from './admin-client.js';
import {
  expectPositionals,
  GLOBAL_OPTIONS,
  parseCommand,
  parseIdArg,
  parseIpFlag,
  parseStateFlag,
  parseUserFlag,
} from './args.js';
import { withEngine, type Io } from './context.js';
import {
  json,
  sessionDetail,
  sessionDetailText,
  sessionSummary,
  sessionTable,
  text,
  type Json,
} from './output.js';
import { apiOf, globalsOf, type Command } from './session-commands.js';

const PAGE = 500;
const API_PAGE = 1000;

/**
 * A progress line on stderr while a listing walks many pages: the first after one second,
 * then at most one a second, and a closing count when any was printed.
 */
export class Progress {
  private readonly started: number;
  private last = 0;
  private shown = false;

  constructor(
    private readonly io: Io,
    private readonly clock: () => number = Date.now,
  ) {
    this.started = clock();
  }

  update(count: number): void {
    const now = this.clock();
    if (now - this.started < 1000 || now - this.last < 1000) return;
    this.last = now;
    this.shown = true;
    this.io.err(`sessiongate: listing sessions... ${count} so far\n`);
  }

  done(count: number): void {
    if (this.shown) this.io.err(`sessiongate: listed ${count} sessions\n`);
  }
}

export const list: Command = async (args, io) => {
  const command = 'session list';
  const { values, positionals } = parseCommand(
    args,
    {
      ...GLOBAL_OPTIONS,
      user: { type: 'string' },
      state: { type: 'string' },
      'client-ip': { type: 'string' },
      json: { type: 'boolean' },
    },
    { command },
  );
  expectPositionals(positionals, [], 0, command);
  const user = parseUserFlag(values.user);
  const state = parseStateFlag(values.state);
  const clientIp = parseIpFlag(values['client-ip']);
  const progress = new Progress(io);
  const api = apiOf(values, io, command);
  if (api) {
    const found: ApiSession[] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ limit: String(API_PAGE) });
      if (user !== undefined) q.set('user', user);
      if (state !== undefined) q.set('state', state);
      if (clientIp !== undefined) q.set('client_ip', clientIp);
      if (cursor !== null) q.set('cursor', cursor);
      const page: { sessions: ApiSession[]; next_cursor: string | null } = await api.call(
        'GET',
        `/api/v1/sessions?${q}`,
      );
      found.push(...page.sessions);
      cursor = page.next_cursor;
      if (cursor !== null) progress.update(found.length);
    } while (cursor !== null);
    progress.done(found.length);
    io.out(values.json ? json(found as unknown as Json) : sessionTable(found.map(recordOfApi), Date.now()));
    return 0;
  }
  const { sessions, now } = await withEngine(globalsOf(values), io, async (engine) => {
    const found: SessionRecord[] = [];
    const at = engine.clock.now();
    let cursor: string | null = null;
    do {
      const page = await engine.list({ user, state, clientIp, cursor, limit: PAGE });
      // The store lists sessions as stored; one past its deadline is not live any more.
      for (const s of page.sessions) if (!isExpired(s, at)) found.push(s);
      cursor = page.nextCursor;
      if (cursor !== null) progress.update(found.length);
    } while (cursor !== null);
    progress.done(found.length);
    return { sessions: found, now: at };
  });
  io.out(values.json ? json(sessions.map(sessionSummary)) : sessionTable(sessions, now));
  return 0;
};

export const show: Command = async (args, io) => {
  const command = 'session show';
  const { values, positionals } = parseCommand(
    args,
    { ...GLOBAL_OPTIONS, json: { type: 'boolean' } },
    { command },
  );
  expectPositionals(positionals, ['ID'], 1, command);
  const id = parseIdArg(positionals[0], command);
  const api = apiOf(values, io, command);
  if (api) {
    const s = await api.call<ApiSession>('GET', sessionPath(id));
    io.out(values.json ? json(s as unknown as Json) : apiDetailText(s));
    return 0;
  }
  const record = await withEngine(globalsOf(values), io, async (engine) => {
    const s = await engine.get(id);
    if (!s) throw sessionNotFound(id);
    return s;
  });
  io.out(values.json ? json(sessionDetail(record)) : sessionDetailText(record));
  return 0;
};

/** `show --url` without `--json`: the API's fields as `key: value` lines, variables indented. */
function apiDetailText(s: ApiSession): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(s)) {
    if (key === 'variables' || key === 'plugins') continue;
    lines.push(`${key}: ${value === null ? '-' : text(String(value))}`);
  }
  const plugins = s.plugins ?? [];
  lines.push(`plugins: ${plugins.length > 0 ? plugins.map(text).join(', ') : '-'}`);
  lines.push('variables:');
  for (const [name, value] of Object.entries(s.variables ?? {}))
    lines.push(`  ${text(name)}: ${text(value)}`);
  return lines.join('\n') + '\n';
}
