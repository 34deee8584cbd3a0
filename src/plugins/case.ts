/** SPS names on the wire are snake_case; TypeScript plugins see camelCase. Keys only, one level. */

export function toCamel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

export function toSnake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Rename the top-level keys (values, such as cookie contents, are left as they are). */
export function renameKeys(obj: object, rename: (k: string) => string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[rename(k)] = v;
  return out;
}
