import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';
import { generatePassword, hashPassword } from '../plugins/builtin/password.js';
import { UsersFileEditor } from '../plugins/builtin/users-file.js';
import { expectPositionals, parseCommand } from './args.js';
import type { Io } from './context.js';
import { serve } from './serve-commands.js';

const CONFIG = fileURLToPath(new URL('../../examples/quickstart/sessiongate.yaml', import.meta.url));

/**
 * `sessiongate quickstart` (what `npm start` runs): make sure the demo user exists — printing
 * its generated password once, when it is created — then serve examples/quickstart.
 */
export async function quickstart(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseCommand(args, { port: { type: 'string' } }, { command: 'quickstart' });
  expectPositionals(positionals, [], 0, 'quickstart');
  const usersFile = resolve(CONFIG, '../../../var/users.yaml');
  const editor = UsersFileEditor.open(usersFile);
  if (!editor.get('demo')) {
    const password = generatePassword();
    editor.set('demo', { password: await hashPassword(password), groups: ['demo'] });
    editor.save();
    io.err(
      `sessiongate: created the demo user in ${usersFile}\n` +
        `  user name: demo\n  password:  ${password}\n` +
        `  (shown only now; change it with: npx sessiongate users passwd demo --file ${usersFile})\n`,
    );
  } else if (existsSync(usersFile)) {
    io.err(`sessiongate: log on as demo (password printed at the first start; users file ${usersFile})\n`);
  }
  return serve(['--config', CONFIG, ...(values.port ? ['--port', values.port] : [])], io);
}
