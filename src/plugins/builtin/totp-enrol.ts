import type { JsonObject } from '../../core/session-types.js';
import type { AaHookResult } from '../define.js';
import type { BuiltinEnvironment } from './environment.js';
import { matchTotp, newTotpSecret, otpauthUri } from './totp-code.js';
import { UsersFileEditor } from './users-file.js';

/** The key-ring context of a secret shown but not yet confirmed (kept in the plugin's cookie). */
export function pendingTotpContext(user: string): string {
  return `totp-enrol:${user}`;
}

/** What self-enrolment needs of the `totp` plugin. */
export interface EnrolSettings {
  usersPath: string;
  issuer: string;
  prompt: string;
  maxAttempts: number;
  window: number;
  env: BuiltinEnvironment;
  /** Take a time step for the user (the confirming code cannot be used again). */
  claim(user: string, step: number): boolean;
  /** Seal a confirmed secret for the users file. */
  sealConfirmed(user: string, secret: string): string;
}

/**
 * One step of TOTP self-enrolment for a user without a secret, after the first factor.
 *
 * The first call makes a secret and asks for a code with the `otpauth://` URI in the question
 * (the page shows it as a QR code and as text); the secret waits sealed in the plugin's cookie
 * (context `totp-enrol:<user>`), never in a plain variable or a log. A code that matches it is
 * the user's proof that their app has it: only then is it sealed into the users file, and the
 * logon goes on (ACCEPT). A wrong code asks again, up to `max_attempts`.
 *
 * @example
 * ```ts
 * if (!record?.totp && settings.self_enrolment) return enrolStep(enrol, user, code, cookie);
 * ```
 */
export async function enrolStep(
  s: EnrolSettings,
  user: string,
  code: string | undefined,
  cookie: JsonObject,
): Promise<AaHookResult> {
  const attempts = typeof cookie.attempts === 'number' ? cookie.attempts : 0;
  const sealed = typeof cookie.enrol === 'string' ? cookie.enrol : undefined;
  const secret = sealed === undefined ? undefined : s.env.keyring.open(sealed, pendingTotpContext(user));
  if (secret === undefined) {
    // First time (or a cookie from another key ring): a new secret to show.
    const fresh = newTotpSecret();
    return ask(s, user, fresh, { attempts, enrol: s.env.keyring.seal(fresh, pendingTotpContext(user)) });
  }
  const pending = { attempts, enrol: sealed! };
  if (code === undefined) return ask(s, user, secret, pending);
  const step = matchTotp(secret, code, Date.now(), s.window);
  if (step === undefined || !s.claim(user, step)) {
    const next = { ...pending, attempts: attempts + 1 };
    if (next.attempts >= s.maxAttempts) {
      return { verdict: 'DENY', reason: 'Too many failed attempts', cookie: { attempts: next.attempts } };
    }
    return { ...ask(s, user, secret, next), reason: 'Invalid code' };
  }
  const saved = save(s, user, secret);
  if (saved !== undefined) return { verdict: 'DENY', reason: saved, cookie: { attempts: attempts + 1 } };
  s.env.logger.info({ plugin: s.env.name, user }, 'TOTP second factor enrolled by its user');
  return { verdict: 'ACCEPT', gatewayUser: user, cookie: { attempts: attempts + 1, verified: true } };
}

function ask(s: EnrolSettings, user: string, secret: string, cookie: JsonObject): AaHookResult {
  return {
    verdict: 'NEEDINFO',
    question: {
      key: 'otp',
      prompt: s.prompt,
      disableEcho: false,
      otpauth: otpauthUri(s.issuer, user, secret),
    },
    cookie,
  };
}

/** Write the confirmed secret; an error message (for the user) when it cannot be done. */
function save(s: EnrolSettings, user: string, secret: string): string | undefined {
  try {
    // Read again under the write: the file may have changed since the logon began.
    const editor = UsersFileEditor.open(s.usersPath);
    const record = editor.get(user);
    if (record?.disabled) return 'This account is disabled';
    // Enrolled meanwhile (another logon, an operator): that secret stays, this one is dropped.
    if (record?.totp !== undefined) return 'A second factor was enrolled meanwhile: log on again';
    editor.set(user, { totp: s.sealConfirmed(user, secret) });
    editor.save();
    return undefined;
  } catch (err) {
    s.env.logger.error(
      { plugin: s.env.name, user, err: (err as Error).message },
      'TOTP enrolment could not be saved',
    );
    return 'The second factor could not be saved; ask an administrator';
  }
}
