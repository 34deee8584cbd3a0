import type { ModulePlugin } from '../define.js';
import type { PluginEnvironment } from '../load.js';
import { fileCredentials } from './file-credentials.js';
import { ldap } from './ldap.js';
import { localUsers } from './local-users.js';
import { totp } from './totp.js';

/** What a built-in plugin's factory receives besides its `config`. */
export interface BuiltinEnvironment extends PluginEnvironment {
  /** The plugin's name in the configuration. */
  name: string;
}

export type BuiltinFactory = (config: Record<string, unknown>, env: BuiltinEnvironment) => ModulePlugin;

/** The built-in plugins by `type` (docs/plugins.md describes each). */
export const BUILTIN_PLUGINS: Record<string, BuiltinFactory> = {
  'local-users': localUsers,
  totp,
  ldap,
  'file-credentials': fileCredentials,
};
