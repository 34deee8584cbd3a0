import { mkdirSync, openSync, closeSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Keyring } from '../../session/keyring.js';
import { definePlugin, type AaHookResult, type AaPlugin } from '../define.js';
import { configPath, parsePluginConfig, requiredString } from './config.js';
import type { BuiltinEnvironment } from './environment.js';
import { watchUsers } from './local-users.js';
import { matchTotp, newTotpSecret, otpauthUri } from './totp-code.js';
import { enrolStep, type EnrolSettings } from './totp-enrol.js';
import type { UsersFileEditor } from './users-file.js';

const configSchema = z.strictObject({
  /** The users file holding the sealed secrets (usually the one of local-users). */
  users_file: requiredString('a path'),
  /** Wrong codes allowed in one logon; the last one ends it with DENY. */
  max_attempts: z.int().min(1).max(100).default(3),
  /** Steps of 30 s accepted before and after now (clock drift). */
  window: z.int().min(0).max(10).default(1),
  prompt: z.string().default('One-time code'),
  /** Where used time steps are recorded (default: `<users_file>.totp-used`). */
  used_codes_dir: z.string().optional(),
  /**
   * A user without a secret enrols one at logon, after the first factor (QR code, then a first
   * code); off: such a user can never pass this step. Needs write access to the users file.
   */
  self_enrolment: z.boolean().default(false),
  /** The name authenticator apps show for enrolled secrets. */
  issuer: z
    .string()
    .regex(/^[^:\p{Cc}]+$/u, { error: 'a non-empty name without ":" or control characters' })
    .default('sessiongate'),
  enrol_prompt: z.string().default('Code shown by your authenticator app'),
});

/** The key of the NEEDINFO question; the answer comes back in `key_value_pairs.otp`. */
export const OTP_KEY = 'otp';

/** The key-ring context that binds a sealed TOTP secret to its user. */
export function totpContext(user: string): string {
  return `totp:${user}`;
}

/**
 * Enrol a user (the file must have them): a new secret, sealed with the key ring into the
 * users file entry. Returns the `otpauth://` URI, the only time the secret is shown.
 */
export function enrolTotp(editor: UsersFileEditor, user: string, keyring: Keyring, issuer: string): string {
  const secret = newTotpSecret();
  editor.set(user, { totp: keyring.seal(secret, totpContext(user)) });
  return otpauthUri(issuer, user, secret);
}

/**
 * The last time step used per user, kept as one empty file `<hex(user)>.<step>` per user in a
 * folder. A step is taken by creating its file with O_EXCL, so of two processes checking the
 * same code at once exactly one wins; a step at or below the user's newest one is refused.
 */
export class UsedSteps {
  constructor(readonly dir: string) {}

  claim(user: string, step: number): boolean {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const prefix = `${Buffer.from(user, 'utf8').toString('hex')}.`;
    const mine = readdirSync(this.dir)
      .filter((f) => f.startsWith(prefix))
      .map((f) => ({ file: f, step: Number(f.slice(prefix.length)) }))
      .filter((e) => Number.isSafeInteger(e.step));
    if (mine.some((e) => e.step >= step)) return false;
    try {
      closeSync(openSync(join(this.dir, `${prefix}${step}`), 'wx', 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    for (const e of mine) {
      try {
        unlinkSync(join(this.dir, e.file));
      } catch {
        // another process cleaned it up
      }
    }
    return true;
  }
}

/**
 * `totp` (aa, second factor): RFC 6238 codes (SHA-1, 30 s, 6 digits, ±`window` steps).
 *
 * authenticate, for `gateway_user` (set by the first factor): without `key_value_pairs.otp`
 * it asks with NEEDINFO; a valid code not used before gives ACCEPT; a wrong (or replayed)
 * code asks again until `max_attempts` wrong codes, then DENY. Attempts are counted in the
 * cookie. A user without an enrolled secret can never give a valid code.
 *
 * With `self_enrolment`, a user without a secret enrols one instead (totp-enrol.ts).
 *
 * authorize: ACCEPT when this plugin accepted a code in this session (cookie), else DENY.
 */
export function totp(config: Record<string, unknown>, env: BuiltinEnvironment): AaPlugin {
  const settings = parsePluginConfig(configSchema, config, env);
  const usersPath = configPath(env, settings.users_file);
  const users = watchUsers(usersPath);
  const used = new UsedSteps(
    settings.used_codes_dir !== undefined
      ? configPath(env, settings.used_codes_dir)
      : `${usersPath}.totp-used`,
  );
  const question = { key: OTP_KEY, prompt: settings.prompt, disableEcho: true };
  const enrol: EnrolSettings = {
    usersPath,
    issuer: settings.issuer,
    prompt: settings.enrol_prompt,
    maxAttempts: settings.max_attempts,
    window: settings.window,
    env,
    claim: (user, step) => used.claim(user, step),
    sealConfirmed: (user, secret) => env.keyring.seal(secret, totpContext(user)),
  };

  return definePlugin({
    kind: 'aa',
    async authenticate({ gatewayUser, keyValuePairs, cookie }): Promise<AaHookResult> {
      const attempts = typeof cookie.attempts === 'number' ? cookie.attempts : 0;
      if (!gatewayUser) return { verdict: 'DENY', reason: 'No user name (configure a first factor)' };
      if (attempts >= settings.max_attempts) {
        return { verdict: 'DENY', reason: 'Too many failed attempts', cookie: { attempts } };
      }
      const code = keyValuePairs?.[OTP_KEY]?.replace(/\s+/g, '');
      const record = (await users.read()).get(gatewayUser);
      if (settings.self_enrolment && record?.totp === undefined && !record?.disabled)
        return enrolStep(enrol, gatewayUser, code, cookie);
      if (code === undefined) return { verdict: 'NEEDINFO', question, cookie: { attempts } };
      const sealed = record?.totp;
      const secret = sealed === undefined ? undefined : env.keyring.open(sealed, totpContext(gatewayUser));
      const step = secret === undefined ? undefined : matchTotp(secret, code, Date.now(), settings.window);
      if (step !== undefined && used.claim(gatewayUser, step)) {
        return { verdict: 'ACCEPT', gatewayUser, cookie: { attempts: attempts + 1, verified: true } };
      }
      const next = { attempts: attempts + 1 };
      if (next.attempts >= settings.max_attempts) {
        return { verdict: 'DENY', reason: 'Too many failed attempts', cookie: next };
      }
      return { verdict: 'NEEDINFO', question, reason: 'Invalid code', cookie: next };
    },

    authorize({ cookie, gatewayUser }): AaHookResult {
      if (cookie.verified === true && gatewayUser) return { verdict: 'ACCEPT' };
      return { verdict: 'DENY', reason: 'No valid one-time code in this session' };
    },

    sessionEnded() {},
  });
}
