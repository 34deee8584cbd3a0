import { createHash } from 'node:crypto';

/** A short, fixed-length digest of a provider's identifier, scoped to its issuer. */
export function tagDigest(issuer: string, value: string): string {
  return createHash('sha256').update(`${issuer}\0${value}`).digest('hex').slice(0, 40);
}

/**
 * The session tags of a session signed in at an OpenID provider: the provider session (`sid`)
 * and the user (`sub`), each scoped to the issuer. The policy tags the session with them at
 * sign-in; a back-channel logout token names one of them.
 *
 * @example
 * ```ts
 * await engine.tag(id, providerTags(iss, { sid, sub })); // ['oidc-sid:…', 'oidc-sub:…']
 * ```
 */
export function providerTags(
  issuer: string,
  ids: { sid?: string | undefined; sub?: string | undefined },
): string[] {
  const tags: string[] = [];
  if (ids.sid) tags.push(`oidc-sid:${tagDigest(issuer, ids.sid)}`);
  if (ids.sub) tags.push(`oidc-sub:${tagDigest(issuer, ids.sub)}`);
  return tags;
}
