import type { BuiltinFactory } from './environment.js';
import { fileCredentials } from './file-credentials.js';
import { ldap } from './ldap.js';
import { localUsers } from './local-users.js';
import { oidc } from './oidc.js';
import { totp } from './totp.js';

/** The built-in plugins by `type` (docs/plugins.md describes each). */
export const BUILTIN_PLUGINS: Record<string, BuiltinFactory> = {
  'local-users': localUsers,
  totp,
  ldap,
  'file-credentials': fileCredentials,
  oidc,
};
