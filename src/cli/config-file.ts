import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { SessionGateError } from '../core/errors.js';
import { accessProfile, type AccessProfile } from '../session/profile.js';
import { readYamlSource, YamlSourceError } from '../gateway/config/yaml-source.js';

/** What the CLI takes from the gateway config file; every other key is left to the gateway. */
export interface CliConfig {
  /** The file as given on the command line (used in messages). */
  file: string;
  /** Its directory: relative paths in the file resolve against it. */
  dir: string;
  store?: string;
  /** Key ring path, already resolved against `dir`. */
  keys?: string;
  profiles: AccessProfile[];
}

const WHOLE = 'expected a whole number >= 0';
const whole = z.int({ error: WHOLE }).min(0, { error: WHOLE });
const onLimit = z.enum(['evict_oldest', 'refuse'], { error: 'expected evict_oldest or refuse' });

const perUser = z.preprocess(
  (v) => (typeof v === 'number' ? { limit: v } : v),
  z.strictObject(
    { limit: whole, on_limit: onLimit.optional() },
    { error: 'expected a number or a mapping {limit, on_limit}' },
  ),
);

// Profiles carry more settings for the gateway (cookie, policy, ...): unknown keys pass.
const profile = z.looseObject(
  {
    inactivity_timeout: whole.optional(),
    max_session_timeout: whole.optional(),
    policy_timeout: whole.optional(),
    max_sessions_per_user: perUser.optional(),
    max_concurrent_sessions: whole.optional(),
    max_in_progress_per_client_ip: perUser.optional(),
  },
  { error: 'expected a mapping of profile settings' },
);

const schema = z.looseObject(
  {
    store: z.string({ error: 'expected a string (memory, sqlite:PATH or a redis URL)' }).optional(),
    keys: z.string({ error: 'expected a string (path of the key ring file)' }).optional(),
    profiles: z
      .record(z.string(), profile, { error: 'expected a mapping of profile names to settings' })
      .optional(),
  },
  { error: 'expected a mapping at the top level' },
);

/**
 * Read the subset of the gateway config the CLI needs. Errors are one line naming the file
 * and the path, e.g. `gw.yaml: profiles.default.inactivity_timeout: expected a whole number >= 0`.
 *
 * @example
 * ```ts
 * const config = loadCliConfig('./sessiongate.yaml', process.cwd());
 * ```
 */
export function loadCliConfig(file: string, cwd: string): CliConfig {
  const path = resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message);
    throw new SessionGateError('SG_ERR_CONFIG', `${file}: cannot read the config file (${why})`);
  }
  let doc: unknown;
  try {
    // The gateway's reader: linear time, size limit, duplicate keys and alias bombs refused.
    doc = readYamlSource(text).raw;
  } catch (err) {
    if (!(err instanceof YamlSourceError)) throw err;
    const more = err.problems.length > 1 ? ` (and ${err.problems.length - 1} more)` : '';
    throw new SessionGateError('SG_ERR_CONFIG', `${file}: ${err.problems[0] ?? 'invalid YAML'}${more}`);
  }
  const parsed = schema.safeParse(doc);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const first = issues[0]!;
    const where = first.path.length > 0 ? `${formatPath(first.path)}: ` : '';
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    throw new SessionGateError('SG_ERR_CONFIG', `${file}: ${where}${first.message}${more}`);
  }
  const dir = dirname(path);
  const out: CliConfig = { file, dir, profiles: [] };
  if (parsed.data.store !== undefined) out.store = parsed.data.store;
  if (parsed.data.keys !== undefined) out.keys = resolve(dir, parsed.data.keys);
  for (const [name, p] of Object.entries(parsed.data.profiles ?? {})) {
    const settings: Partial<Omit<AccessProfile, 'name'>> = {};
    if (p.inactivity_timeout !== undefined) settings.inactivityTimeout = p.inactivity_timeout;
    if (p.max_session_timeout !== undefined) settings.maxSessionTimeout = p.max_session_timeout;
    if (p.policy_timeout !== undefined) settings.accessPolicyTimeout = p.policy_timeout;
    if (p.max_sessions_per_user !== undefined) {
      settings.maxSessionsPerUser = p.max_sessions_per_user.limit;
      if (p.max_sessions_per_user.on_limit) settings.onUserLimit = p.max_sessions_per_user.on_limit;
    }
    if (p.max_concurrent_sessions !== undefined) settings.maxConcurrentSessions = p.max_concurrent_sessions;
    const perIp = p.max_in_progress_per_client_ip;
    if (perIp !== undefined) settings.maxInProgressPerClientIp = perIp.limit;
    if (perIp?.on_limit) settings.onClientIpLimit = perIp.on_limit;
    out.profiles.push(accessProfile(name, settings));
  }
  return out;
}

function formatPath(path: PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}
