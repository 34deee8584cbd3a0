import { readFileSync } from 'node:fs';
import { importJWK, importPKCS8, type CryptoKey } from 'jose';
import * as client from 'openid-client';
import { z } from 'zod';
import { SessionGateError } from '../../core/errors.js';
import { configPath, requiredString } from './config.js';
import type { BuiltinEnvironment } from './environment.js';

/** The signature algorithms an ID token may use: asymmetric only (never `none` or HMAC). */
export const ID_TOKEN_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

/** The variables the plugin sets itself; a `claims` mapping may not name them. */
export const OWN_VARIABLES = [
  'session.oauth.provider',
  'session.oauth.sub',
  'session.oauth.iss',
  'session.oauth.email',
  'session.oauth.name',
  'session.oauth.sid',
  'session.oauth.client_id',
  'session.oauth.end_session_endpoint',
  'session.oauth.post_logout_redirect_uri',
  'session.oauth.access_token',
  'session.oauth.refresh_token',
  'session.oauth.id_token',
  'session.oauth.expires_at',
  'session.oauth.refresh_at',
];

function httpUrl(what: string) {
  return requiredString(what).refine(
    (v) => {
      try {
        return /^https?:$/.test(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { error: `expected ${what}` },
  );
}

const claimName = z.string().regex(/^[A-Za-z0-9_:.$-]{1,128}$/, { error: 'expected a claim name' });
const claimValue = z.union([z.string(), z.number(), z.boolean()]);
const domain = z
  .string()
  .regex(/^[A-Za-z0-9.-]{1,253}$/, { error: 'expected a domain name such as example.org' })
  .transform((d) => d.toLowerCase());
const VARIABLE = /^session\.oauth\.[A-Za-z0-9_.:-]{1,128}$/;

export const oidcConfigSchema = z
  .strictObject({
    /** The provider; its metadata comes from `<issuer>/.well-known/openid-configuration`. */
    issuer: httpUrl('an https:// URL'),
    client_id: requiredString('the client id').min(1, { error: 'required' }),
    /** Client authentication, exactly one: a file holding the secret (relative to the config)... */
    client_secret_file: z.string().min(1).optional(),
    /** ...an environment variable holding it... */
    client_secret_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name' })
      .optional(),
    /** ...or a private key (PKCS#8 PEM or a JWK in JSON) signing client assertions. */
    private_key_jwt: z
      .strictObject({
        key_file: requiredString('a path'),
        alg: z.enum(ID_TOKEN_ALGORITHMS).default('RS256'),
        kid: z.string().min(1).optional(),
      })
      .optional(),
    /** The gateway's callback, `https://GATEWAY/sg/oidc/callback`, registered at the provider. */
    redirect_uri: httpUrl('an absolute http(s) URL')
      .refine((v) => !/[?#]/.test(v), { error: 'must not have a query or fragment' })
      // The gateway answers the provider's redirect at this path only.
      .refine((v) => URL.canParse(v) && new URL(v).pathname === '/sg/oidc/callback', {
        error: "must be the gateway's callback, https://GATEWAY/sg/oidc/callback",
      }),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, { error: 'expected a scope name' }))
      .default(['openid', 'profile', 'email'])
      .refine((s) => s.includes('openid'), { error: 'must include openid' }),
    user_claim: claimName.default('preferred_username'),
    groups_claim: claimName.default('groups'),
    /** When given, the (verified) email must be in one of these domains. */
    email_domains: z.array(domain).default([]),
    /** Claims the ID token must carry with exactly these values (a list claim: must contain it). */
    required_claims: z.record(claimName, claimValue).default({}),
    /** More session variables from claims: `session.oauth.custom.team: team`. */
    claims: z.record(z.string(), claimName).default({}),
    display_name: z.string().min(1).max(100).optional(),
    id_token_algorithms: z
      .array(z.enum(ID_TOKEN_ALGORITHMS))
      .min(1)
      .default([...ID_TOKEN_ALGORITHMS]),
    clock_skew_seconds: z.int().min(0).max(600).default(30),
    /** The access token is refreshed this long before it expires, on the session's next request. */
    refresh_before_seconds: z.int().min(0).max(3600).default(60),
    /** How long a sign-in may take, from the redirect to the callback. */
    max_flow_seconds: z.int().min(10).max(86_400).default(600),
    timeout_ms: z
      .int({ error: 'expected a whole number of milliseconds' })
      .min(100)
      .max(120_000)
      .default(10_000),
    /** An http:// issuer is refused unless this is true (tests on loopback). */
    allow_insecure_http: z.boolean().default(false),
    /** Where the provider sends the browser after RP-initiated logout. */
    end_session_redirect: httpUrl('an absolute http(s) URL').optional(),
  })
  .superRefine((c, ctx) => {
    const auth = [c.client_secret_file, c.client_secret_env, c.private_key_jwt].filter(
      (a) => a !== undefined,
    );
    if (auth.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['client_secret_file'],
        message: 'give exactly one of client_secret_file, client_secret_env or private_key_jwt',
      });
    }
    // Checked here, not by the record's key schema: zod would only say "Invalid key in record".
    for (const name of Object.keys(c.claims)) {
      const bad = !VARIABLE.test(name)
        ? 'expected a name under session.oauth.'
        : OWN_VARIABLES.includes(name)
          ? 'is set by the plugin itself'
          : undefined;
      if (bad !== undefined) ctx.addIssue({ code: 'custom', path: ['claims', name], message: bad });
    }
    if (c.issuer.startsWith('http:') && !c.allow_insecure_http) {
      ctx.addIssue({
        code: 'custom',
        path: ['issuer'],
        message: 'an http:// issuer needs allow_insecure_http: true',
      });
    }
  });

export type OidcSettings = z.infer<typeof oidcConfigSchema>;

/** The client's credentials, read when the plugin is built: a problem stops the gateway at start. */
export type ClientCredentials = { secret: string } | { keyText: string };

/** Read the client secret or private key the settings name; one-line config errors. */
export function readClientCredentials(s: OidcSettings, env: BuiltinEnvironment): ClientCredentials {
  const fail = (field: string, message: string) =>
    new SessionGateError('SG_ERR_CONFIG', `plugin ${env.name}: config.${field}: ${message}`);
  if (s.client_secret_env !== undefined) {
    const secret = process.env[s.client_secret_env];
    if (!secret) throw fail('client_secret_env', `environment variable ${s.client_secret_env} is not set`);
    return { secret };
  }
  const [field, file] =
    s.private_key_jwt !== undefined
      ? ['private_key_jwt.key_file', s.private_key_jwt.key_file]
      : ['client_secret_file', s.client_secret_file!];
  let text: string;
  try {
    text = readFileSync(configPath(env, file), 'utf8');
  } catch (err) {
    throw fail(field, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (s.private_key_jwt !== undefined) return { keyText: text };
  const secret = text.replace(/\r?\n$/, '');
  if (secret === '') throw fail(field, `${file} is empty`);
  return { secret };
}

/** How openid-client authenticates the client at the token endpoint. */
export async function clientAuth(
  s: OidcSettings,
  credentials: ClientCredentials,
): Promise<client.ClientAuth> {
  if ('secret' in credentials) return client.ClientSecretBasic(credentials.secret);
  const pk = s.private_key_jwt!;
  const text = credentials.keyText.trim();
  const key = text.startsWith('{')
    ? ((await importJWK(JSON.parse(text) as Record<string, unknown>, pk.alg)) as CryptoKey)
    : await importPKCS8(text, pk.alg);
  const kid = pk.kid ?? (text.startsWith('{') ? (JSON.parse(text) as { kid?: string }).kid : undefined);
  return client.PrivateKeyJwt(kid === undefined ? key : { key, kid });
}

/**
 * What discovery and every later request to the provider use: the timeout, http allowed or not,
 * and the check of the ID token's signature against the provider's JWKS. openid-client skips
 * that check for ID tokens from the token endpoint (OIDC Core 3.1.3.7 allows trusting TLS);
 * we do not, so a forged token is refused even if the token endpoint's answer is tampered with.
 */
export function requestOptions(s: OidcSettings): client.DiscoveryRequestOptions {
  const execute = [client.enableNonRepudiationChecks];
  if (s.allow_insecure_http) execute.push(client.allowInsecureRequests);
  return { timeout: s.timeout_ms / 1000, execute };
}
