import { sessionNotFound } from '../core/errors.js';
import { expectPositionals, GLOBAL_OPTIONS, parseCommand, parseIdArg, parseUserFlag, usage } from './args.js';
import { sessionPath } from './admin-client.js';
import { withEngine } from './context.js';
import { json } from './output.js';
import { apiOf, globalsOf, type Command } from './session-commands.js';

/**
 * `sessiongate session kill ID | --user NAME [--json]`: close one session, or every session of
 * a user, with reason `admin_kill` — in the store, or through a running gateway with --url.
 */
export const kill: Command = async (args, io) => {
  const command = 'session kill';
  const { values, positionals } = parseCommand(
    args,
    { ...GLOBAL_OPTIONS, user: { type: 'string' }, json: { type: 'boolean' } },
    { command },
  );
  expectPositionals(positionals, ['ID'], 0, command);
  const user = parseUserFlag(values.user);
  if (positionals.length > 0 && user !== undefined)
    throw usage('give either ID or --user NAME, not both', command);
  if (positionals.length === 0 && user === undefined) throw usage('missing ID (or --user NAME)', command);
  const api = apiOf(values, io, command);
  if (user !== undefined) {
    const closed = api
      ? (await api.call<{ closed: number }>('DELETE', `/api/v1/sessions?user=${encodeURIComponent(user)}`))
          .closed
      : await withEngine(globalsOf(values), io, (engine) => engine.closeUser(user, 'admin_kill'));
    io.out(values.json ? json({ closed }) : `${closed}\n`);
    return 0;
  }
  const id = parseIdArg(positionals[0], command);
  if (api) await api.call('DELETE', sessionPath(id));
  else {
    await withEngine(globalsOf(values), io, async (engine) => {
      if (!(await engine.get(id)) || !(await engine.close(id, 'admin_kill'))) throw sessionNotFound(id);
    });
  }
  if (values.json) io.out(json({ closed: 1 }));
  return 0;
};
