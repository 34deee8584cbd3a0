import { z } from 'zod';
import { pluginSpecSchema } from '../../plugins/load.js';
import { LOGON_THROTTLE_DEFAULTS, logonThrottle } from './throttle-schema.js';
import { profileIdentityKeys, routeIdentityKeys } from './identity-schema.js';
import { checkAutoSecureReachable, checkCookiePrefix } from './cookie-prefix.js';
import { sshSchema } from './ssh-schema.js';

const WHOLE = 'expected a whole number >= 0';
const whole = z.int({ error: WHOLE }).min(0, { error: WHOLE });
const port = z
  .int({ error: 'expected a port number' })
  .min(0)
  .max(65_535, { error: 'expected a port number' });
const text = (what: string) => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

const listener = z.strictObject({
  host: text('a host name or address').default('127.0.0.1'),
  port: port.default(8080),
  tls: z.strictObject({ cert: text('a certificate file'), key: text('a key file') }).optional(),
  /**
   * Strict-Transport-Security on every answer of a TLS listener (browsers then refuse plain
   * http for the host); false leaves it out.
   */
  hsts: z
    .union([
      z.literal(false),
      z.strictObject({
        max_age: whole.default(31_536_000),
        include_subdomains: z.boolean().default(false),
        preload: z.boolean().default(false),
      }),
    ])
    .default({ max_age: 31_536_000, include_subdomains: false, preload: false }),
  /** Largest request head accepted; larger gets 431. */
  max_header_bytes: z.int().min(1024).max(1_048_576).default(16_384),
});

/** One step of an access policy (docs/configuration.md, "Policy steps"). */
export const policyStepSchema = z.union(
  [
    z.literal('logon'),
    z.literal('allow'),
    z.literal('deny'),
    z.strictObject({ authenticate: text('a plugin name') }),
    z.strictObject({ authorize: text('a plugin name') }),
    z.strictObject({ event: text('an event id') }),
    z.strictObject({ assign: z.record(z.string(), z.string(), { error: 'expected variable: value pairs' }) }),
    z.strictObject({ redirect: text('a URL') }),
  ],
  {
    error:
      'expected logon, allow, deny, or one of {authenticate: PLUGIN}, {authorize: PLUGIN}, {event: ID}, {assign: {...}}, {redirect: URL}',
  },
);
export type PolicyStep = z.infer<typeof policyStepSchema>;

const perUser = z.preprocess(
  (v) => (typeof v === 'number' ? { limit: v } : v),
  z.strictObject(
    { limit: whole, on_limit: z.enum(['evict_oldest', 'refuse']).default('evict_oldest') },
    { error: 'expected a number or {limit, on_limit}' },
  ),
);

const perAddress = z.preprocess(
  (v) => (typeof v === 'number' ? { limit: v } : v),
  z.strictObject(
    { limit: whole, on_limit: z.enum(['evict_oldest', 'refuse']).default('evict_oldest') },
    { error: 'expected a number or {limit, on_limit}' },
  ),
);

export const profileSchema = z.strictObject({
  cookie: z
    .strictObject({
      name: z
        .string()
        .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { error: 'expected a cookie name (RFC 6265 token)' })
        .default('MRHSession'),
      /** auto = Secure on TLS listeners or when the client came over https through a trusted proxy. */
      secure: z.union([z.boolean(), z.literal('auto')]).default('auto'),
      domain: z.string().optional(),
      same_site: z.enum(['Lax', 'Strict']).default('Lax'),
    })
    .superRefine(checkCookiePrefix)
    .default({ name: 'MRHSession', secure: 'auto', same_site: 'Lax' }),
  inactivity_timeout: whole.default(900),
  max_session_timeout: whole.default(604_800),
  policy_timeout: whole.default(300),
  max_sessions_per_user: perUser.optional(),
  max_concurrent_sessions: whole.default(0),
  /** Unfinished logons per client address; the default bounds what cookieless floods can store. */
  max_in_progress_per_client_ip: perAddress.default({ limit: 20, on_limit: 'evict_oldest' }),
  /** Failed logons counted in the store per user, per address and per user+address pair. */
  logon_throttle: logonThrottle.default(LOGON_THROTTLE_DEFAULTS),
  /** Failed logons wait a random time in this range before the answer (APM min/max failure delay). */
  failure_delay_ms: z
    .strictObject({ min: whole.default(1000), max: whole.default(3000) })
    .refine((d) => d.min <= d.max, { error: 'min must not exceed max' })
    .default({ min: 1000, max: 3000 }),
  /** Failed logon attempts before the policy ends in deny. */
  max_logon_attempts: z.int().min(1).default(3),
  /**
   * Keep the logon password (sealed) for the session's life, for rules that hand it on. false:
   * kept while the access policy runs (its plugins need it) and deleted when the policy ends.
   */
  keep_password: z.boolean().default(false),
  realm: text('a realm').default('sessiongate'),
  logout_redirect: z.string().optional(),
  policy: z
    .array(policyStepSchema)
    .min(1, { error: 'a policy needs at least one step' })
    .default(['logon', 'deny']),
  settings: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  ...profileIdentityKeys,
});
export type ProfileConfig = z.infer<typeof profileSchema>;

const credentials = z.strictObject({
  plugin: text('a credential-store plugin name'),
  account: text('an account name'),
  inject: z.union([
    z.literal('basic'),
    z.literal('bearer'),
    z.strictObject({ header: text('a header name') }),
  ]),
});

export const routeSchema = z.strictObject({
  match: z
    .strictObject({
      host: z.string().default('*'),
      path: z.string().startsWith('/', { error: 'expected a path starting with /' }).default('/'),
    })
    .default({ host: '*', path: '/' }),
  /** http(s)://host:port, or `demo` for the built-in demo app (quickstart). */
  upstream: z.string().refine((u) => u === 'demo' || /^https?:\/\/[^/]+/.test(u), {
    error: 'expected http://host:port, https://host:port or demo',
  }),
  profile: text('a profile name').default('default'),
  timeouts: z
    .strictObject({
      connect_ms: whole.default(5000),
      headers_ms: whole.default(30_000),
      body_ms: whole.default(300_000),
    })
    .default({ connect_ms: 5000, headers_ms: 30_000, body_ms: 300_000 }),
  preserve_host: z.boolean().default(false),
  /** Accept an encoded / or \ (%2F, %5C) in the path, forwarded still encoded (refused otherwise). */
  allow_encoded_slashes: z.boolean().default(false),
  /** Pass the client's Authorization header upstream. Off by default: the gateway consumed it. */
  forward_authorization: z.boolean().default(false),
  credentials: credentials.optional(),
  /**
   * Send the session's OpenID Connect access token (`session.oauth.access_token`, kept sealed)
   * to the upstream as `Authorization: Bearer`; sessions without one are forwarded without.
   */
  pass_access_token: z.boolean().default(false),
  /**
   * API clients: an `Authorization: Bearer` JWT access token of an `oidc` plugin's provider, with
   * `audience` in its `aud`, is accepted in place of a session cookie (one session per token).
   */
  bearer: z
    .strictObject({
      plugin: text('an oidc plugin name'),
      audience: text('an audience'),
      required_scopes: z.array(text('a scope name')).default([]),
      /** Ask the provider (RFC 7662) instead of checking a JWT: opaque or revocable tokens. */
      introspect: z.boolean().default(false),
    })
    .optional(),
  /** Who may use the route once allowed; absent = every allowed session. */
  acl: z
    .strictObject({ users: z.array(z.string()).optional(), groups: z.array(z.string()).optional() })
    .optional(),
  rules: z.array(z.string()).default([]),
  /**
   * Step-up: an allowed session whose last logon is older than this many seconds logs on again
   * (its profile's logon and authenticate steps, as the same user) before a request here is
   * proxied. Absent: the first logon is enough.
   */
  reauth_within: z.int().min(1).max(31_536_000).optional(),
  ...routeIdentityKeys,
});
export type RouteConfig = z.infer<typeof routeSchema>;

/**
 * The whole `sessiongate.yaml` (docs/configuration.md). Unknown keys are errors, so typos
 * are caught at start.
 */
const configObject = z.strictObject({
  listen: listener.default({
    host: '127.0.0.1',
    port: 8080,
    max_header_bytes: 16_384,
    hsts: { max_age: 31_536_000, include_subdomains: false, preload: false },
  }),
  admin: z
    .strictObject({
      host: text('a host').default('127.0.0.1'),
      port: port.default(8081),
      token_file: text('a file').default('./var/admin.token'),
      enabled: z.boolean().default(true),
      /** `GET .../variables/{name}?secure=1` answers with the value (audited); else 403. */
      reveal_secure: z.boolean().default(false),
    })
    .default({
      host: '127.0.0.1',
      port: 8081,
      token_file: './var/admin.token',
      enabled: true,
      reveal_secure: false,
    }),
  store: text('a store URL').default('sqlite:./var/sessiongate.db'),
  keys: text('a key ring file').default('./var/keyring.json'),
  trusted_proxies: z.array(z.string()).default([]),
  plugins: z.array(pluginSpecSchema).default([]),
  profiles: z.record(z.string(), profileSchema).default({}),
  routes: z.array(routeSchema).min(1, { error: 'at least one route is needed' }),
  rules: z.array(z.string()).default([]),
  /** A rule handler running longer than this fails the request with a 500 (ms). */
  rule_timeout_ms: z.int().min(1).default(1000),
  /** The audit trail (docs/admin.md): JSON lines to standard output, or appended to `file`. */
  audit: z.strictObject({ file: text('a file').optional() }).default({}),
  /** The close pipeline (docs/admin.md): shutdown flush bound, and when a subscriber shows as lagging. */
  close_pipeline: z
    .strictObject({
      /** At shutdown, deliver what is due for at most this long; the rest stays in the outbox. */
      shutdown_grace_ms: whole.default(5000),
      /** A subscriber whose oldest undelivered record is this old is named as behind (readyz, page, metric). */
      behind_after_ms: z.int().min(1).default(60_000),
      /** A subscriber whose backlog has not shrunk for this long is stuck: readyz answers 503. */
      stuck_after_ms: z.int().min(1).default(120_000),
    })
    .default({ shutdown_grace_ms: 5000, behind_after_ms: 60_000, stuck_after_ms: 120_000 }),
  /** The SSH gateway (docs/ssh.md); absent: HTTP only. */
  ssh: sshSchema.optional(),
  /** Coalescing of idle-timer writes (ms). */
  touch_resolution_ms: whole.default(1000),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') })
    .default({ level: 'info' }),
});
/** The config with the checks that span sections (a prefixed cookie against the listener). */
export const configSchema = configObject.superRefine(checkAutoSecureReachable);
export type GatewayConfig = z.infer<typeof configSchema>;
