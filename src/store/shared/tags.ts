import { SessionGateError } from '../../core/errors.js';

/** The longest tag, in UTF-16 code units (an OIDC `sid` or `sub` with an issuer hash fits). */
export const MAX_TAG_LENGTH = 256;
/** The most tags one session carries: tags index a few identities, not arbitrary data. */
export const MAX_TAGS_PER_SESSION = 16;

// C0, DEL and C1 controls: a tag ends up in keys, SQL rows and log lines.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Check one tag against the contract's limits: SG_ERR_INVALID_TAG unless it is a string of
 * 1..256 characters without control characters.
 *
 * @example
 * ```ts
 * checkTag('oidc-sid:3f2a:8c1d'); // ok
 * checkTag(''); // throws SG_ERR_INVALID_TAG
 * ```
 */
export function checkTag(tag: unknown): string {
  if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_TAG_LENGTH || CONTROL.test(tag)) {
    const shown = typeof tag === 'string' ? `of ${tag.length} characters` : `of type ${typeof tag}`;
    throw new SessionGateError(
      'SG_ERR_INVALID_TAG',
      `a session tag must be 1..${MAX_TAG_LENGTH} characters without control characters (got one ${shown})`,
    );
  }
  return tag;
}

/**
 * The tags a session carries after adding `added` to the ones it has (`had`), each checked,
 * without duplicates; SG_ERR_INVALID_TAG when that is more than MAX_TAGS_PER_SESSION. Checked
 * before anything is written, so a refused call changes nothing.
 *
 * @example
 * ```ts
 * mergeTags(['a'], ['a', 'b']); // { all: ['a', 'b'], fresh: ['b'] }
 * ```
 */
export function mergeTags(
  had: Iterable<string>,
  added: readonly string[],
): { all: string[]; fresh: string[] } {
  if (!Array.isArray(added)) throw new SessionGateError('SG_ERR_INVALID_TAG', 'tags must be an array');
  const all = new Set(had);
  const fresh: string[] = [];
  for (const tag of added) {
    if (all.has(checkTag(tag))) continue;
    all.add(tag);
    fresh.push(tag);
  }
  if (all.size > MAX_TAGS_PER_SESSION) {
    throw new SessionGateError(
      'SG_ERR_INVALID_TAG',
      `a session carries at most ${MAX_TAGS_PER_SESSION} tags (this call would make ${all.size})`,
    );
  }
  return { all: [...all], fresh };
}
