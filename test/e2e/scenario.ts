// What the end-to-end scenarios share: a folder with the recorder's control file, sessions
// logged on through several gateways and ended, and waiting (bounded) until the close
// pipeline has delivered what the oracle expects.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  adminKill,
  end,
  endingOf,
  inParallel,
  logon,
  send,
  unfinishedLogon,
  type LoggedOn,
} from './driver.js';
import { shared, until, type GatewayProcess } from './gateways.js';
import { endedBySession, readCalls, readCloses } from './oracle.js';

export function scenarioDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `sg-e2e-${name}-`));
}

/** What the recorder does per hook (see fixtures/recorder.mjs), read at every call. */
export function setBehaviour(dir: string, behaviour: Record<string, Record<string, unknown>>): void {
  writeFileSync(shared(dir).control, JSON.stringify(behaviour));
}

/** A number from the environment (a longer run for the report), else `fallback`. */
export function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  return raw === undefined || raw === '' ? fallback : Number(raw);
}

export interface Population {
  sessions: LoggedOn[];
  /** Ids of sessions started without credentials: the plugins are never called in them. */
  unfinished: string[];
}

/**
 * Log `count` sessions on through the gateways in turn, each with a user of its own and the
 * endings in turn (logout, admin kill, idle timeout), plus `unfinished` logons without
 * credentials; 6 clients at a time.
 */
export async function populate(
  gateways: GatewayProcess[],
  count: number,
  unfinished = 3,
  prefix = 'u',
): Promise<Population> {
  const sessions = await inParallel(
    Array.from({ length: count }, (_, i) => i),
    6,
    (i) => logon(gateways[i % gateways.length]!.base, `${prefix}${i}`, endingOf(i), i % gateways.length),
  );
  const open = await inParallel(
    Array.from({ length: unfinished }, (_, i) => i),
    3,
    (i) => unfinishedLogon(gateways[i % gateways.length]!.base),
  );
  return { sessions, unfinished: open };
}

/**
 * End every session through the gateway it logged on at (admin kills through `admin`), and the
 * unfinished logons by admin kill: their close must reach the audit trail, never a plugin.
 */
export async function endAll(
  dir: string,
  pop: Population,
  gateways: GatewayProcess[],
  admin: GatewayProcess,
): Promise<void> {
  const token = shared(dir).token;
  await inParallel(pop.sessions, 6, (s) => end(s, gateways[s.via]!.base, admin.adminBase, token));
  await inParallel(pop.unfinished, 3, (id) => adminKill(admin.adminBase!, token, id));
}

/** Users whose session the plugin `plugin` has completed session_ended for. */
export function endedUsers(dir: string, plugin: string): Set<string> {
  return new Set(endedBySession(readCalls(shared(dir).calls), plugin).keys());
}

/** Wait until `plugin` completed session_ended for every session (bounded); the time it took. */
export async function allEnded(dir: string, plugin: string, users: string[], ms: number): Promise<number> {
  const t0 = Date.now();
  await until(
    `session_ended of ${plugin} for all ${users.length} sessions`,
    () => {
      const have = endedUsers(dir, plugin);
      return users.every((u) => have.has(u));
    },
    ms,
  ).catch((err: Error) => {
    const have = endedUsers(dir, plugin);
    throw new Error(`${err.message}; still missing ${users.filter((u) => !have.has(u)).length}`);
  });
  return Date.now() - t0;
}

/** Wait until the audit trail has a session_close for every id (bounded). */
export async function allAudited(dir: string, ids: string[], ms: number): Promise<void> {
  const seen = () => new Set(readCloses(shared(dir).audit).map((c) => c.session_id));
  await until(
    `session_close audit records for all ${ids.length} sessions`,
    () => {
      const have = seen();
      return ids.every((id) => have.has(id));
    },
    ms,
  );
}

/** The median of some figures (for the report lines the tests print). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}

/** Wait until no close record is pending for any subscriber (the admin API's stats; bounded). */
export async function drained(admin: GatewayProcess, dir: string, ms: number): Promise<void> {
  const bearer = readFileSync(shared(dir).token, 'utf8').trim();
  const end = Date.now() + ms;
  for (;;) {
    let last: string;
    // The admin listener may be restarting (its worker was killed): try again until the end.
    const r = await send(`${admin.adminBase!}/api/v1/stats`, { authorization: `Bearer ${bearer}` }).catch(
      (err: Error) => ({ status: 0, body: err.message }),
    );
    if (r.status === 200) {
      const pending = (JSON.parse(r.body) as { close_pipeline: { pending: Record<string, number> } })
        .close_pipeline.pending;
      last = JSON.stringify(pending);
      if (Object.values(pending).every((n) => n === 0)) return;
    } else last = `${r.status} ${r.body}`;
    if (Date.now() > end) throw new Error(`close pipeline not drained within ${ms} ms: ${last}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Wait (bounded) until one of `pids` is in the middle of a session_ended — started, not yet
 * finished — and return that pid: the process to SIGKILL so the kill cuts a delivery off.
 */
export async function deliveringPid(dir: string, pids: number[], ms: number): Promise<number> {
  let found: number | undefined;
  await until(
    `one of ${pids.join(', ')} in the middle of a session_ended`,
    () => {
      const calls = readCalls(shared(dir).calls).filter(
        (c) => c.hook === 'session_ended' && pids.includes(c.pid),
      );
      const done = new Set(calls.filter((c) => c.phase !== 'start').map((c) => `${c.pid}/${c.session_id}`));
      found = calls.findLast((c) => c.phase === 'start' && !done.has(`${c.pid}/${c.session_id}`))?.pid;
      return found !== undefined;
    },
    ms,
  );
  return found!;
}
