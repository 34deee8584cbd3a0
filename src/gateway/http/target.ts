// The one request target every decision is made on, and exactly the target that is forwarded.
//
// A gateway that routes on one spelling of a path while the application resolves another is
// an ACL bypass: `/x/../admin`, `/%61dmin`, `//admin` and `/admin;x/` all reach an
// application's `/admin` after its own normalization. So the target is brought to one form
// before anything looks at it (RFC 3986 §6.2.2 and RFC 9112 §3.2):
//   - absolute-form (`GET http://host/path`) is reduced to origin-form; its authority replaces
//     the Host header, as RFC 9112 §3.2.2 says a server must;
//   - percent-encoded unreserved characters are decoded (`%61` → `a`), other escapes get
//     upper-case hex (`%2f` → `%2F`);
//   - dot segments are removed (also when they were encoded, `%2e%2e`), and so are empty
//     segments (`//`): many servers merge slashes, so `//admin` must not slip past `/admin`;
//   - an encoded `/` or `\` is kept encoded and flagged (a route may accept it), while a raw
//     `\`, any NUL (raw or `%00`), a `#`, a malformed escape, or a dot segment carrying path
//     parameters (`..;x`, which Tomcat resolves as `..`) is refused with 400.
// The query is passed through untouched: it is the application's business.

/** A target the gateway refuses, with the one-line reason given to the client. */
export interface RefusedTarget {
  ok: false;
  reason: string;
}

/** The normalized target. */
export interface NormalTarget {
  ok: true;
  /** The normalized path, always starting with one `/`. */
  path: string;
  /** The query with its `?`, or ''. */
  query: string;
  /** The authority of an absolute-form target (it replaces Host), else undefined. */
  authority: string | undefined;
  /** The path holds an encoded `/` or `\` (`%2F`, `%5C`): refused unless the route opts in. */
  encodedSlash: boolean;
  /** `path + query` differs from what the client sent: the request's url must be replaced. */
  changed: boolean;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * Bring a request target to the form every decision is made on.
 *
 * @example
 * normalizeTarget('/x/../%61dmin//secret?q=1');
 * // { ok: true, path: '/admin/secret', query: '?q=1', authority: undefined, encodedSlash: false, changed: true }
 * normalizeTarget('/a%2fb'); // { ok: true, path: '/a%2Fb', encodedSlash: true, ... }
 * normalizeTarget('/a\\b'); // { ok: false, reason: 'a backslash in the path' }
 */
export function normalizeTarget(target: string): NormalTarget | RefusedTarget {
  let authority: string | undefined;
  let rest = target;
  if (target.charCodeAt(0) !== 47 /* / */) {
    const absolute = splitAbsolute(target);
    if (!absolute.ok) return absolute;
    authority = absolute.authority;
    rest = absolute.rest;
  }
  const q = rest.indexOf('?');
  const rawPath = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q);
  if (authority === undefined && isAlreadyNormal(rawPath)) {
    return { ok: true, path: rawPath, query, authority, encodedSlash: false, changed: false };
  }
  const decoded = decodeUnreserved(rawPath);
  if (typeof decoded !== 'string') return decoded;
  const path = removeDotSegments(decoded);
  if (typeof path !== 'string') return path;
  const encodedSlash = /%(?:2F|5C)/.test(path);
  return { ok: true, path, query, authority, encodedSlash, changed: path + query !== target };
}

/**
 * The common case costs one pass and no allocation: a path with no `%`, `\`, `#`, `;`, NUL,
 * and no `/` followed by `/` or `.`, is already normal.
 */
function isAlreadyNormal(path: string): boolean {
  if (path.length === 0) return false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 /* % */ || c === 92 /* \ */ || c === 35 /* # */ || c === 59 /* ; */ || c === 0) return false;
    if (c === 47 /* / */) {
      const next = path.charCodeAt(i + 1);
      if (next === 47 || next === 46 /* . */) return false;
    }
  }
  return true;
}

/** `http://authority/path?q` → its authority and origin-form rest; `*` and the rest refused. */
function splitAbsolute(target: string): { ok: true; authority: string; rest: string } | RefusedTarget {
  const m = /^(https?):\/\/([^/?#]*)(.*)$/i.exec(target);
  if (!m) return { ok: false, reason: 'the request target must be a path or an http(s) URL' };
  const authority = m[2] ?? '';
  if (authority === '' || authority.includes('@') || /[^A-Za-z0-9.\-:[\]]/.test(authority))
    return { ok: false, reason: 'the request target has a malformed authority' };
  const rest = m[3] ?? '';
  return { ok: true, authority, rest: rest.startsWith('/') ? rest : `/${rest}` };
}

/** Decode escapes of unreserved characters, upper-case the others, refuse what cannot pass. */
function decodeUnreserved(path: string): string | RefusedTarget {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const ch = path[i] as string;
    if (ch === '\\') return { ok: false, reason: 'a backslash in the path' };
    if (ch === '#') return { ok: false, reason: 'a fragment (#) in the request target' };
    if (ch === '\0') return { ok: false, reason: 'a NUL character in the path' };
    if (ch !== '%') {
      out += ch;
      continue;
    }
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false, reason: 'a malformed %-escape in the path' };
    const decoded = String.fromCharCode(parseInt(hex, 16));
    if (decoded === '\0') return { ok: false, reason: 'an encoded NUL (%00) in the path' };
    out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
    i += 2;
  }
  return out;
}

/** RFC 3986 §5.2.4 over segments, with empty segments dropped and `..` stopping at the root. */
function removeDotSegments(path: string): string | RefusedTarget {
  const segments = path.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const seg = segments[i] as string;
    const bare = seg.includes(';') ? seg.slice(0, seg.indexOf(';')) : seg;
    if (bare !== seg && (bare === '.' || bare === '..'))
      return { ok: false, reason: 'a dot segment with parameters (;) in the path' };
    if (seg === '..') out.pop();
    else if (seg !== '.' && seg !== '') out.push(seg);
    // A path that ends in a directory keeps its trailing slash (`/a/`, `/a/.`, `/a/b/..`).
    if (i === last && (seg === '' || seg === '.' || seg === '..') && out.length > 0) out.push('');
  }
  return `/${out.join('/')}`;
}
