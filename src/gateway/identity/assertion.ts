import { createHash } from 'node:crypto';
import { importJWK, SignJWT } from 'jose';
import type { Clock } from '../../core/clock.js';
import { SessionGateError } from '../../core/errors.js';
import type { SessionRecord } from '../../core/session-types.js';
import { SIGNING_ALG, type SigningKey, type SigningKeys } from '../../session/signing-keys.js';

/** The header that carries the signed identity assertion to the application. */
export const ASSERTION_HEADER = 'x-sessiongate-assertion';

/** Where the gateway publishes the assertion's public keys. */
export const JWKS_PATH = '/sg/.well-known/jwks.json';

/** A key `jose` signs with (a CryptoKey once imported). */
type SigningKeyInput = Awaited<ReturnType<typeof importJWK>>;

/** Cached assertions per route: enough for every active user of a busy gateway. */
const MAX_CACHED = 10_000;

/**
 * The key ring's signing keys as the gateway uses them: the active key imported once (on first
 * use) for `jose`, and the JSON Web Key Set of every published public key, made once.
 *
 * @example
 * const keys = new AssertionKeys(keyring.signing);
 * res.end(keys.jwks); // {"keys":[{"kty":"EC","crv":"P-256",...,"kid":"s..."}]}
 */
export class AssertionKeys {
  /** The body of `GET /sg/.well-known/jwks.json`. */
  readonly jwks: string;
  #key: Promise<SigningKeyInput> | undefined;

  constructor(private readonly signing: SigningKeys) {
    this.jwks = JSON.stringify({ keys: signing.keys.map((k) => k.publicJwk) });
  }

  /** The key new assertions are signed with; undefined: the key ring has none. */
  get active(): SigningKey | undefined {
    return this.signing.active;
  }

  /** The active private key, imported for `jose` once. */
  privateKey(): Promise<SigningKeyInput> {
    const active = this.signing.active;
    if (!active)
      return Promise.reject(new SessionGateError('SG_ERR_KEYRING', 'the key ring has no signing key'));
    return (this.#key ??= importJWK(active.privateJwk as Parameters<typeof importJWK>[0], SIGNING_ALG));
  }
}

/** Settings of one route's assertion (docs/identity.md). */
export interface AssertionSettings {
  issuer: string;
  /** Seconds from `iat` to `exp`. */
  lifetime: number;
  /** Fixed `aud`; undefined: the request's host (a wildcard route). */
  audience: string | undefined;
}

interface Cached {
  /** The Host header it was made for (only compared when the audience follows the request). */
  host: string;
  sub: string;
  groups: string;
  /** Until then it is sent as is: at least half its lifetime is left. */
  freshUntil: number;
  token: string | Promise<string>;
}

/**
 * Signs one route's identity assertions: a short-lived ES256 JWT with iss, aud, sub, iat, exp,
 * groups and a hash of the session id. Signing costs about 0.2 ms, so an assertion is cached
 * per session and re-signed only when half of its lifetime has passed (or the user or groups
 * changed): the request path reads a Map. Concurrent requests of one session share a signing.
 *
 * @example
 * const signer = new AssertionSigner(keys, { issuer: 'sessiongate', lifetime: 60, audience: 'app.example.org' }, clock);
 * const token = signer.current(session, req.headers.host ?? ''); // string, or a promise of one
 */
export class AssertionSigner {
  readonly #cache = new Map<string, Cached>();

  constructor(
    private readonly keys: AssertionKeys,
    private readonly settings: AssertionSettings,
    private readonly clock: Clock,
  ) {}

  /** The assertion for this session on a request to `host`: cached, or a promise of a new one. */
  current(session: SessionRecord, host: string): string | Promise<string> {
    const sub = session.user ?? session.variables['session.logon.last.username'] ?? '';
    const groups = session.variables['session.logon.last.groups'] ?? '';
    const now = this.clock.now();
    const hit = this.#cache.get(session.id);
    if (
      hit !== undefined &&
      now < hit.freshUntil &&
      hit.sub === sub &&
      hit.groups === groups &&
      (this.settings.audience !== undefined || hit.host === host)
    ) {
      return hit.token;
    }
    return this.sign(session.id, host, sub, groups, now);
  }

  private sign(id: string, host: string, sub: string, groups: string, now: number): Promise<string> {
    const { issuer, lifetime, audience } = this.settings;
    const iat = Math.floor(now / 1000);
    const kid = this.keys.active?.id ?? '';
    const token = this.keys.privateKey().then((key) => {
      const jwt = new SignJWT({ groups: groups.split(',').filter(Boolean), session_hash: sessionHash(id) })
        .setProtectedHeader({ alg: SIGNING_ALG, kid, typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(audience ?? bareHost(host))
        .setIssuedAt(iat)
        .setExpirationTime(iat + lifetime);
      // A policy may allow without a logon: such a session has no user, and no `sub`.
      return (sub === '' ? jwt : jwt.setSubject(sub)).sign(key);
    });
    const entry: Cached = { host, sub, groups, freshUntil: now + (lifetime * 1000) / 2, token };
    this.#cache.delete(id); // re-inserted last: the Map's first entry is the least recently signed
    if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value!);
    this.#cache.set(id, entry);
    return token.then(
      (signed) => {
        entry.token = signed;
        return signed;
      },
      (err: unknown) => {
        if (this.#cache.get(id) === entry) this.#cache.delete(id);
        throw err;
      },
    );
  }
}

/**
 * The `session_hash` claim: SHA-256 of the session id, base64url. It lets an application (or an
 * administrator with the id from the admin API) tell sessions apart and correlate them without
 * the assertion ever carrying the id or the token.
 *
 * @example
 * sessionHash('4f1c...'); // 'q3W...' (43 characters)
 */
export function sessionHash(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('base64url');
}

/** The host name of a Host header value, lowercase, without the port. */
function bareHost(host: string): string {
  const h = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  return h.toLowerCase();
}
