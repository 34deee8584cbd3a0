import type { SessionRecord } from '../core/session-types.js';
import { expiryOf, MASK, visibleVariables } from '../admin/views.js';

/** What `show` prints in place of a secure value. */
export { MASK };

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

export function json(value: Json): string {
  return JSON.stringify(value, null, 2) + '\n';
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** The fields `list --json` prints for each session (no variables). */
export function sessionSummary(s: SessionRecord): { [key: string]: Json } {
  return {
    id: s.id,
    state: s.state,
    user: s.user,
    client_ip: s.clientIp,
    profile: s.profile,
    created_at: iso(s.createdAt),
    last_access_at: iso(s.lastAccessAt),
    expires_at: iso(s.expiresAt),
    expiry_reason: expiryOf(s),
    idle_timeout: s.idleTimeout,
    lifetime: s.lifetime,
    lifetime_expires_at: iso(s.lifetimeDeadline),
    policy_expires_at: iso(s.policyDeadline),
  };
}

/** The deadlines `modify --json` prints. */
export function sessionDeadlines(s: SessionRecord): { [key: string]: Json } {
  return {
    id: s.id,
    idle_timeout: s.idleTimeout,
    lifetime: s.lifetime,
    expires_at: iso(s.expiresAt),
    lifetime_expires_at: iso(s.lifetimeDeadline),
  };
}

/** The full view of `show --json`. Never contains a secure value or plugin cookie contents. */
export function sessionDetail(s: SessionRecord): { [key: string]: Json } {
  return {
    ...sessionSummary(s),
    variables: visibleVariables(s),
    plugin_cookies: Object.keys(s.cookies).sort(),
  };
}

/** `show` without `--json`: `key: value` lines, variables indented under their heading. */
export function sessionDetailText(s: SessionRecord): string {
  const detail = sessionDetail(s);
  const lines: string[] = [];
  for (const [key, value] of Object.entries(detail)) {
    if (key === 'variables' || key === 'plugin_cookies') continue;
    lines.push(`${key}: ${value === null ? '-' : text(String(value))}`);
  }
  const cookies = Object.keys(s.cookies).sort();
  lines.push(`plugin_cookies: ${cookies.length > 0 ? cookies.map(text).join(', ') : '-'}`);
  lines.push('variables:');
  for (const [name, value] of Object.entries(visibleVariables(s)))
    lines.push(`  ${text(name)}: ${text(value)}`);
  return lines.join('\n') + '\n';
}

/**
 * `list` without `--json`: an aligned table with the time until each session ends and the
 * deadline that ends it (idle, lifetime, or the access policy timeout of an unfinished logon).
 */
export function sessionTable(sessions: SessionRecord[], now: number): string {
  const rows = [['ID', 'STATE', 'USER', 'CLIENT_IP', 'CREATED', 'EXPIRES_IN', 'BY']];
  for (const s of sessions) {
    rows.push([
      s.id,
      s.state,
      s.user === null ? '-' : text(s.user),
      s.clientIp ?? '-',
      new Date(s.createdAt).toISOString().replace(/\.\d{3}Z$/, 'Z'),
      s.expiresAt === null ? 'never' : duration(s.expiresAt - now),
      expiryOf(s) ?? '-',
    ]);
  }
  return table(rows);
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return (
    rows
      .map((row) =>
        row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** A compact duration: `45s`, `14m59s`, `7h59m`, `6d23h`. */
export function duration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (d > 0) return `${d}d${two(h)}h`;
  if (h > 0) return `${h}h${two(m)}m`;
  if (m > 0) return `${m}m${two(s)}s`;
  return `${s}s`;
}

/** Text for a terminal: values with control characters are shown JSON-quoted. */
export function text(value: string): string {
  return /\p{Cc}/u.test(value) ? JSON.stringify(value) : value;
}
