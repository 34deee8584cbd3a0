/**
 * The first cookie called `name` in a Cookie header (names and values trimmed; a part without
 * `=` or with an empty name is skipped). A scan, not a parsed map or a split: the request path
 * reads one or two cookies per request, and this allocates nothing but the value.
 *
 * @example
 * ```ts
 * findCookie('theme=dark; MRHSession=abc', 'MRHSession'); // 'abc'
 * ```
 */
export function findCookie(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq > start && eq < end && header.slice(start, eq).trim() === name) {
      return header.slice(eq + 1, end).trim();
    }
    start = end + 1;
  }
  return undefined;
}
