/**
 * The error catalogue: every error sessiongate raises on purpose has a stable code here.
 * `docs/errors.md` lists the same codes; `test/core/errors.test.ts` keeps the two in sync.
 *
 * @example
 * ```ts
 * throw new SessionGateError('SG_ERR_CONFIG', `${file}: store: expected a string`);
 * ```
 */
export const ERROR_CODES = {
  SG_ERR_SESSION_NOT_FOUND: { status: 404, summary: 'No live session has this id (or it ended).' },
  SG_ERR_INVALID_SESSION_ID: {
    status: 400,
    summary: 'A session id must be 32 lowercase hex characters (a token was given where an id belongs?).',
  },
  SG_ERR_INVALID_TOKEN: {
    status: 400,
    summary: 'A session token must be 43 base64url characters (an id was given where a token belongs?).',
  },
  SG_ERR_LIFETIME_WITH_REMAINING: {
    status: 400,
    summary: '`lifetime` and `remaining` cannot be used together.',
  },
  SG_ERR_INVALID_TIMEOUT: { status: 400, summary: 'A timeout must be a whole number of seconds, 0 or more.' },
  SG_ERR_INVALID_STATE: {
    status: 400,
    summary: 'A session state must be one of inprogress, allow, deny, redirect.',
  },
  SG_ERR_INVALID_VARIABLE_NAME: {
    status: 400,
    summary: 'A variable name is dotted words of letters, digits, `_` and `-` (e.g. `session.custom.x`).',
  },
  SG_ERR_INVALID_VALUE: { status: 400, summary: 'A variable value must be a string.' },
  SG_ERR_INVALID_TAG: {
    status: 400,
    summary:
      'A session tag is 1 to 256 characters without control characters; a session carries at most 16 tags.',
  },
  SG_ERR_READ_ONLY_VARIABLE: {
    status: 400,
    summary: 'This variable is maintained by sessiongate and cannot be set.',
  },
  SG_ERR_SECURE_FLAG_REQUIRED: {
    status: 403,
    summary: 'The variable is secure: it is only returned when the secure flag is given.',
  },
  SG_ERR_SECURE_REVEAL_DISABLED: {
    status: 403,
    summary:
      'The admin API does not reveal secure values: `admin.reveal_secure` is off, or the request came from the web page.',
  },
  SG_ERR_UNKNOWN_CONFIG_KEY: { status: 404, summary: 'The access profile has no such configuration key.' },
  SG_ERR_USER_LIMIT_REACHED: {
    status: 409,
    summary: 'The user already has the maximum number of sessions and the profile refuses new ones.',
  },
  SG_ERR_CONCURRENCY_LIMIT_REACHED: {
    status: 503,
    summary: 'The maximum number of concurrent sessions is reached.',
  },
  SG_ERR_CLIENT_IP_LIMIT_REACHED: {
    status: 429,
    summary: 'The client address already has the maximum number of in-progress sessions.',
  },
  SG_ERR_VERSION_CONFLICT: {
    status: 409,
    summary: 'The session changed since it was read (compare-and-set failed); read it again and retry.',
  },
  SG_ERR_KEYRING: { status: 500, summary: 'The key ring file is missing, unreadable or malformed.' },
  SG_ERR_DECRYPT: {
    status: 500,
    summary: 'A secure variable could not be decrypted (unknown key id, wrong key, or tampered value).',
  },
  SG_ERR_STORE_URL: {
    status: 400,
    summary:
      'The store URL is not understood (use memory, sqlite:PATH, redis://HOST:PORT or redis+cluster://HOST:PORT,...).',
  },
  SG_ERR_STORE_UNAVAILABLE: { status: 503, summary: 'The session store cannot be reached or opened.' },
  SG_ERR_STORE_NOT_REPLICATED: {
    status: 503,
    summary:
      'The redis store is set to `durability=replicated` and no replica acknowledged the write in time; it may be lost on failover.',
  },
  SG_ERR_STORE_CLOSED: { status: 503, summary: 'The session store was closed.' },
  SG_ERR_UNKNOWN_SUBSCRIBER: {
    status: 500,
    summary: 'A close-pipeline subscriber name is empty or used twice.',
  },
  SG_ERR_NO_ROUTE: { status: 404, summary: 'No configured route matches the request host and path.' },
  SG_ERR_LOGON_REQUIRED: {
    status: 401,
    summary: 'The access policy needs credentials (logon form or HTTP Basic).',
  },
  SG_ERR_LOGON_FAILED: { status: 401, summary: 'The credentials were not accepted; try again.' },
  SG_ERR_SIGN_IN_REFUSED: {
    status: 403,
    summary:
      "An identity provider's sign-in was refused (state, ID token, required claims, or the provider did not answer); the check that failed is logged.",
  },
  SG_ERR_LOGOUT_TOKEN_INVALID: {
    status: 400,
    summary:
      'A back-channel logout token failed a check of OpenID Connect Back-Channel Logout 1.0 (section 2.6).',
  },
  SG_ERR_TOKEN_REFRESH_FAILED: {
    status: 502,
    summary:
      "An identity provider refused to refresh a session's access token, or did not answer; a refusal ends the session with reason token_refresh_failed.",
  },
  SG_ERR_BEARER_TOKEN_INVALID: {
    status: 401,
    summary:
      "A route's bearer access token was refused (signature, issuer, audience, time, or scope); no session is made and WWW-Authenticate says invalid_token.",
  },
  SG_ERR_LOGON_THROTTLED: {
    status: 429,
    summary:
      'Too many failed logons for this user or from this address; the logon is refused, even with the right password, until the time in Retry-After.',
  },
  SG_ERR_NEEDINFO: {
    status: 401,
    summary:
      'A plugin asks a question (e.g. a one-time code); API clients answer in the X-Sessiongate-Answer header.',
  },
  SG_ERR_ACCESS_DENIED: { status: 403, summary: 'The access policy denied the session.' },
  SG_ERR_ENROLMENT_NEEDS_BROWSER: {
    status: 403,
    summary:
      'The logon would enrol a second factor (scan a QR code, confirm a first code), which needs a browser; an API client cannot do it.',
  },
  SG_ERR_REAUTH_FAILED: {
    status: 403,
    summary:
      'The route asks for a recent logon (reauth_within) and the re-authentication failed; the session keeps its access to other routes.',
  },
  SG_ERR_ORIGIN_MISMATCH: { status: 403, summary: 'A gateway form was posted from another origin.' },
  SG_ERR_NOT_SIGNED_IN: {
    status: 401,
    summary: "The user's own pages (`/sg/sessions`, `/sg/password`) need the cookie of a signed-in session.",
  },
  SG_ERR_CSRF_TOKEN: {
    status: 403,
    summary:
      "A user page's form came without its `csrf` field, or with one of another session; reload the page.",
  },
  SG_ERR_WRONG_PASSWORD: {
    status: 403,
    summary: 'The current password given with a password change is wrong.',
  },
  SG_ERR_PASSWORD_MISMATCH: { status: 400, summary: 'The new password and its repetition differ.' },
  SG_ERR_PASSWORD_RULES: {
    status: 400,
    summary:
      'The new password breaks a rule: not empty, one line, at most 1024 characters, not the current one.',
  },
  SG_ERR_PASSWORD_CHANGE_UNAVAILABLE: {
    status: 404,
    summary:
      "The session's user did not log on with a `local-users` plugin (LDAP, OpenID Connect): the gateway cannot change that password.",
  },
  SG_ERR_FORWARD_AUTH_UNTRUSTED: {
    status: 403,
    summary:
      'A forward-auth call (`/sg/auth`, `/sg/forward-auth`) came from an address not in `trusted_proxies`.',
  },
  SG_ERR_FORWARD_AUTH_HEADERS: {
    status: 400,
    summary:
      'A forward-auth call lacks the original URI or X-Forwarded-Host, sends one twice, malformed, or two that disagree (the proxy is misconfigured).',
  },
  SG_ERR_FORWARD_AUTH_TARGET: {
    status: 403,
    summary:
      'The original request of a forward-auth call is refused: a malformed or ambiguous target, a gateway page, another host in an absolute-form target, or no route for it.',
  },
  SG_ERR_BAD_REQUEST: {
    status: 400,
    summary:
      'The request is refused before any decision: a malformed or ambiguous target (encoded `/`, `\\`, NUL, dot segment with `;`), two Host headers, a Transfer-Encoding other than `chunked`; or a malformed gateway form (body too large, missing field).',
  },
  SG_ERR_UPSTREAM_UNAVAILABLE: {
    status: 502,
    summary: 'The upstream server cannot be reached or broke the connection.',
  },
  SG_ERR_UPSTREAM_TIMEOUT: { status: 504, summary: 'The upstream server did not answer in time.' },
  SG_ERR_UNAUTHORIZED: {
    status: 401,
    summary: 'The admin API needs a valid bearer token (or a signed-in admin page session).',
  },
  SG_ERR_CSRF_CHECK_FAILED: {
    status: 403,
    summary:
      'A change made with the admin page cookie must carry X-Requested-With and come from the admin origin.',
  },
  SG_ERR_UNKNOWN_ENDPOINT: { status: 404, summary: 'The admin listener has no such path.' },
  SG_ERR_RECORDING_NOT_FOUND: {
    status: 404,
    summary: 'The session has no recording of this channel (admin API; recordings are SSH only).',
  },
  SG_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    summary:
      'The path does not take this HTTP method (an admin API path; `GET /sg/logout`: log out with POST).',
  },
  SG_ERR_INVALID_REQUEST: {
    status: 400,
    summary: 'An admin API request body or query parameter is malformed; the message names the field.',
  },
  SG_ERR_ADMIN_TOKEN: {
    status: 500,
    summary: 'The admin token file cannot be read or created, or is empty (CLI: no token given for --url).',
  },
  SG_ERR_ADMIN_UNAVAILABLE: {
    status: 503,
    summary: 'The admin API at the given --url cannot be reached or gave an answer that is not the API.',
  },
  SG_ERR_CREDENTIALS_UNAVAILABLE: {
    status: 502,
    summary: 'The credential store has no credentials for this application (or failed); see the gateway log.',
  },
  SG_ERR_CREDENTIALS_REJECTED: {
    status: 502,
    summary: 'The application refused every credential the store handed out.',
  },
  SG_ERR_UPSTREAM_BAD_RESPONSE: {
    status: 502,
    summary:
      'The upstream answered with something that is not valid HTTP, or its answer cannot be passed on (an invalid header, a failing response rule).',
  },
  SG_ERR_CLIENT_ABORTED: {
    status: 499,
    summary:
      'The client closed the connection before the answer; the upstream request is aborted and nothing is sent (499 is only logged).',
  },
  SG_ERR_PLUGIN_LOAD: {
    status: 500,
    summary:
      "A plugin cannot be built: a module's default export is not `definePlugin(...)`, a hook is misnamed, an SPS plugin's MANIFEST is invalid.",
  },
  SG_ERR_PLUGIN_FAILED: {
    status: 500,
    summary:
      'A plugin hook failed (threw, timed out, crashed, answered malformed, or its kind has no such hook); the gateway logs it and applies the default: DENY, or no credentials.',
  },
  SG_ERR_RULE_LOAD: {
    status: 500,
    summary: 'A rule file cannot be loaded; the message names the file (and the line where known).',
  },
  SG_ERR_RULE_FAILED: {
    status: 500,
    summary:
      'A rule threw or ran past its deadline; the gateway answers 500 for that request and carries on.',
  },
  SG_ERR_INTERNAL: { status: 500, summary: 'An unexpected error; the gateway log has the details.' },
  SG_ERR_CONFIG: { status: 400, summary: 'The configuration file is invalid; the message names the path.' },
  SG_ERR_USAGE: { status: 400, summary: 'A command-line flag or argument is missing, unknown or malformed.' },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a stable catalogue code; `message` is one line meant for the user. */
export class SessionGateError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionGateError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}

/** A session id is public (a hash of the token: safe in logs); only text of its shape is shown. */
const SESSION_ID_SHAPE = /^[0-9a-f]{32}$/;

/**
 * The error for a session id that names no live session. The message shows the id only when it
 * has the shape of one: anything else given as an id may be a token or a typo of one, and
 * messages end up in logs.
 *
 * @example
 * ```ts
 * if (!session) throw sessionNotFound(id); // SG_ERR_SESSION_NOT_FOUND: no live session with id 3f…
 * ```
 */
export function sessionNotFound(id: string): SessionGateError {
  const which = SESSION_ID_SHAPE.test(id) ? `id ${id}` : 'this id';
  return new SessionGateError('SG_ERR_SESSION_NOT_FOUND', `no live session with ${which}`);
}

/** True when `err` is a catalogue error, optionally of one code. */
export function isSessionGateError(err: unknown, code?: ErrorCode): err is SessionGateError {
  return err instanceof SessionGateError && (code === undefined || err.code === code);
}
