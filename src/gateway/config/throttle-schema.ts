import { z } from 'zod';

const WHOLE = 'expected a whole number >= 0';
const whole = z.int({ error: WHOLE }).min(0, { error: WHOLE });

/** One failure counter's limit: `limit` failures within `window` seconds (limit 0 = off). */
const counterLimit = z.strictObject(
  { limit: whole, window: z.int().min(1, { error: 'expected a window of at least 1 second' }) },
  { error: 'expected {limit, window}' },
);

/**
 * The defaults, reasoned in docs/configuration.md: a user+address pair gets the fewest tries
 * (one client guessing one account); a user more, enough that one address can never lock the
 * user out: within one per-user window an address adds at most `per_user_address.limit` for
 * each pair window that overlaps it (5 x 5 = 25 < 30 here). An address gets the most (an office
 * behind one NAT shares it): it stops spraying one password over many users from one address,
 * and only that address waits.
 */
export const LOGON_THROTTLE_DEFAULTS = {
  per_user_address: { limit: 5, window: 900 },
  per_user: { limit: 30, window: 3600 },
  per_address: { limit: 100, window: 900 },
};

/**
 * `logon_throttle` of a profile: failed logons counted in the session store (shared by every
 * worker and gateway on it); over a limit the logon is refused with 429 before the password is
 * checked, until the counter's window ends.
 *
 * @example
 * ```yaml
 * logon_throttle:
 *   per_user_address: { limit: 5, window: 900 }
 *   per_user: { limit: 30, window: 3600 }
 *   per_address: { limit: 100, window: 900 }
 * ```
 */
export const logonThrottle = z.strictObject({
  per_user_address: counterLimit.default(LOGON_THROTTLE_DEFAULTS.per_user_address),
  per_user: counterLimit.default(LOGON_THROTTLE_DEFAULTS.per_user),
  per_address: counterLimit.default(LOGON_THROTTLE_DEFAULTS.per_address),
});
export type LogonThrottleConfig = z.infer<typeof logonThrottle>;
