import { isExpired } from '../core/deadline.js';
import type { SessionRecord } from '../core/session-types.js';
import {
  expectPositionals,
  GLOBAL_OPTIONS,
  parseCommand,
  parseIdArg,
  parseStateFlag,
  parseUserFlag,
} from './args.js';
import { withEngine } from './context.js';
import { json, sessionDetail, sessionDetailText, sessionSummary, sessionTable } from './output.js';
import { globalsOf, notFound, type Command } from './session-commands.js';

const PAGE = 500;

export const list: Command = async (args, io) => {
  const command = 'session list';
  const { values, positionals } = parseCommand(
    args,
    { ...GLOBAL_OPTIONS, user: { type: 'string' }, state: { type: 'string' }, json: { type: 'boolean' } },
    { command },
  );
  expectPositionals(positionals, [], 0, command);
  const user = parseUserFlag(values.user);
  const state = parseStateFlag(values.state);
  const { sessions, now } = await withEngine(globalsOf(values), io, async (engine) => {
    const found: SessionRecord[] = [];
    const at = engine.clock.now();
    let cursor: string | null = null;
    do {
      const page = await engine.list({ user, state, cursor, limit: PAGE });
      // The store lists sessions as stored; one past its deadline is not live any more.
      for (const s of page.sessions) if (!isExpired(s, at)) found.push(s);
      cursor = page.nextCursor;
    } while (cursor !== null);
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
  const record = await withEngine(globalsOf(values), io, async (engine) => {
    const s = await engine.get(id);
    if (!s) throw notFound(id);
    return s;
  });
  io.out(values.json ? json(sessionDetail(record)) : sessionDetailText(record));
  return 0;
};
