import type { IncomingMessage } from 'node:http';
import type { SessionRecord } from '../../core/session-types.js';
import { ASSERTION_HEADER } from './assertion.js';
import type { IdentityPlan } from './plan.js';

/**
 * Removes the client's copies of the route's stripped headers from the request, before rules
 * run: from `req.headers` (what rules read) and `req.rawHeaders` (what the proxy copies to the
 * upstream). The common request carries none of them: each raw name is checked against the
 * plan's length and first-letter tables (no string made), and only a name that passes both is
 * lowercased and looked up; only a request that has one is rewritten.
 *
 * @example
 * stripClientHeaders(req, route.identity); // X-Forwarded-User: mallory is gone
 */
export function stripClientHeaders(req: IncomingMessage, plan: IdentityPlan): void {
  const raw = req.rawHeaders;
  const { stripLengths, stripFirstChars, stripSet } = plan;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const n = name.length;
    if (n < stripLengths.length && stripLengths[n] === 0) continue;
    if (stripFirstChars[(name.charCodeAt(0) | 0x20) & 0xff] === 0) continue;
    if (stripSet.has(name.toLowerCase())) {
      removeHeaders(req, stripSet);
      return;
    }
  }
}

function removeHeaders(req: IncomingMessage, names: ReadonlySet<string>): void {
  for (const name of names) delete req.headers[name];
  const raw = req.rawHeaders;
  let kept = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (names.has((raw[i] as string).toLowerCase())) continue;
    raw[kept] = raw[i] as string;
    raw[kept + 1] = raw[i + 1] as string;
    kept += 2;
  }
  raw.length = kept;
}

/** Printable ASCII: sent as it is. */
const PLAIN_VALUE = /^[\x20-\x7e]*$/;

/**
 * Sets the route's identity headers for an allowed session into the upstream request's header
 * changes: each replaces whatever the client sent (stripped already) or a rule set; a variable
 * that is not set removes the header. Then the assertion, when the route sends one: a promise
 * only when it has to be signed (about once per session per half lifetime).
 *
 * @example
 * const signing = setIdentityHeaders(requestHeaders, route.identity, session, req.headers.host ?? '');
 * if (signing) await signing;
 */
export function setIdentityHeaders(
  requestHeaders: Record<string, string | null>,
  plan: IdentityPlan,
  session: SessionRecord,
  host: string,
): void | Promise<void> {
  const headers = plan.headers;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const value = h.derived ? h.derived(session) : session.variables[h.variable];
    requestHeaders[h.name] = value === undefined || value === '' ? null : headerValue(value);
  }
  const signer = plan.assertion;
  if (!signer) return;
  const token = signer.current(session, host);
  if (typeof token === 'string') {
    requestHeaders[ASSERTION_HEADER] = token;
    return;
  }
  return token.then((signed) => {
    requestHeaders[ASSERTION_HEADER] = signed;
  });
}

/**
 * A header value for any string: printable ASCII as it is, anything else (non-ASCII names,
 * control characters that would split the header) percent-encoded as UTF-8; null when it
 * cannot be encoded (a lone surrogate).
 */
export function headerValue(value: string): string | null {
  if (PLAIN_VALUE.test(value)) return value;
  try {
    return encodeURIComponent(value);
  } catch {
    return null;
  }
}

/**
 * The upstream header changes of a WebSocket upgrade: the client's stripped headers go, the
 * route's identity headers and assertion are set, on top of `changes` (returned).
 *
 * @example
 * requestHeaders: await upgradeHeaders(req, route.identity, session, { 'x-forwarded-for': chain }),
 */
export async function upgradeHeaders(
  req: IncomingMessage,
  plan: IdentityPlan,
  session: SessionRecord,
  changes: Record<string, string | null>,
): Promise<Record<string, string | null>> {
  stripClientHeaders(req, plan);
  await setIdentityHeaders(changes, plan, session, req.headers.host ?? '');
  return changes;
}
