import { resolve } from 'node:path';
import type { LoadedConfig } from '../gateway/config/load.js';
import { UsersFileEditor } from '../plugins/builtin/users-file.js';

/**
 * Accounts a policy would lock out: a profile's `{authenticate: P}` step where P is a built-in
 * `totp` plugin without `self_enrolment`, and users of P's users file (not disabled) with no
 * TOTP secret: they can never answer that step. One warning line per such step (users of
 * another first factor, e.g. ldap, are not in the file and not seen here).
 *
 * @example
 * ```ts
 * for (const line of totpLockouts(loaded)) io.out(`  ${line}\n`);
 * ```
 */
export function totpLockouts(loaded: LoadedConfig): string[] {
  const out: string[] = [];
  for (const [profile, p] of Object.entries(loaded.config.profiles)) {
    for (const step of p.policy) {
      if (typeof step !== 'object' || !('authenticate' in step)) continue;
      const plugin = loaded.config.plugins.find((x) => x.name === step.authenticate);
      if (plugin?.runtime !== 'builtin' || plugin.type !== 'totp') continue;
      if (plugin.config.self_enrolment === true || typeof plugin.config.users_file !== 'string') continue;
      const missing = usersWithoutSecret(resolve(loaded.baseDir, plugin.config.users_file));
      if (missing.length === 0) continue;
      out.push(
        `warning: profile ${profile}, step { authenticate: ${plugin.name} }: ${missing.join(', ')} ` +
          `cannot log on (no TOTP secret, and ${plugin.name} has no self_enrolment): ` +
          'enrol with `sessiongate users totp NAME`, or set self_enrolment: true',
      );
    }
  }
  return out;
}

function usersWithoutSecret(file: string): string[] {
  try {
    const users = UsersFileEditor.open(file).list();
    return [...users].filter(([, u]) => u.totp === undefined && !u.disabled).map(([name]) => name);
  } catch {
    return []; // an unreadable users file is the plugin's problem, reported when it loads
  }
}
