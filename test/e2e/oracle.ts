// The exactly-once oracle of the end-to-end tests. It reads what the recorder plugin wrote (every
// hook call, with pid and time), the audit trail and the gateways' log lines, and checks:
// - every session in which a plugin was called got exactly one completed `session_ended` from
//   that plugin, with the last cookie the plugin returned;
// - no plugin got `session_ended` for a session it was never called in;
// - a second completed delivery is allowed only when the first ran in a process that was then
//   SIGKILLed (its ack may have been cut off), and the repeat must be flagged `redelivered`
//   (to the plugin, or in a gateway log line naming the session);
// - the audit trail has exactly one `session_close` per closed session (a repeat only after a
//   kill, flagged `redelivered: true`).
import { existsSync, readFileSync } from 'node:fs';
import type { LogLine } from './gateways.js';

export interface Call {
  t: number;
  pid: number;
  plugin: string;
  hook: string;
  session_id: string;
  /** authenticate: the user logging on (the tests give every session a user of its own). */
  user?: string;
  cookie: Record<string, unknown>;
  phase?: 'start' | 'end' | 'fail';
  redelivered?: boolean | null;
}

export interface AuditClose {
  time: string;
  event: string;
  session_id: string;
  reason?: string;
  redelivered?: boolean;
}

const jsonLines = <T>(file: string): T[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as T)
    : [];

export const readCalls = (file: string): Call[] => jsonLines<Call>(file);
export const readCloses = (file: string): AuditClose[] =>
  jsonLines<AuditClose>(file).filter((l) => l.event === 'session_close');

/**
 * Which session a call belongs to. The id changes when the logon rotates the token, so the
 * tests give every session a user of its own: authenticate names it, and the cookie it returns
 * (which session_ended gets) carries it. A call without either is keyed by its session id.
 */
export const sessionKey = (c: Call): string =>
  c.user ?? (typeof c.cookie.user === 'string' ? c.cookie.user : `id:${c.session_id}`);

/** Completed session_ended calls of `plugin`, by session key. */
export function endedBySession(calls: Call[], plugin: string): Map<string, Call[]> {
  const out = new Map<string, Call[]>();
  for (const c of calls) {
    if (c.plugin !== plugin || c.hook !== 'session_ended' || c.phase !== 'end') continue;
    out.set(sessionKey(c), [...(out.get(sessionKey(c)) ?? []), c]);
  }
  return out;
}

/** Whether a gateway said it redelivered `sessionId` to `subscriber` (a log line naming both). */
export function redeliveryLogged(logs: LogLine[], sessionId: string, subscriber: string): boolean {
  return logs.some((l) => {
    const id = l.sessionId ?? l.session_id;
    const sub = l.subscriber;
    const says = l.redelivered === true || /redeliver|took over|taken over|takeover/i.test(l.msg ?? '');
    return id === sessionId && says && (sub === undefined || sub === subscriber);
  });
}

export interface Verdict {
  /** Sessions the plugin was called in. */
  participated: number;
  /** …that got exactly one completed session_ended. */
  once: number;
  missing: string[];
  unexpected: string[];
  /** Sessions with more than one completed session_ended, and how far apart (ms). */
  duplicates: { id: string; count: number; apartMs: number; allowed: boolean }[];
  wrongCookie: string[];
  /** Deliveries a kill cut off (started in a killed pid, never finished there). */
  cutOff: number;
  /** Sessions whose session_ended came again after a kill cut one off, without the flag. */
  unflagged: string[];
  problems: string[];
}

export interface OracleInput {
  calls: Call[];
  plugin: string;
  /** Pids SIGKILLed during the test: a delivery of theirs may be repeated. */
  killed?: Set<number>;
  /** Every gateway log line of the test (all processes). */
  logs?: LogLine[];
}

/** Check the exactly-once contract for one plugin (see the top of this file). */
export function judge({ calls, plugin, killed = new Set(), logs = [] }: OracleInput): Verdict {
  const mine = calls.filter((c) => c.plugin === plugin);
  const lastCookie = new Map<string, Record<string, unknown>>();
  for (const c of mine) {
    if (c.hook === 'session_ended') continue;
    // What the recorder returned: its calls counter advanced (see fixtures/recorder.mjs).
    lastCookie.set(sessionKey(c), { ...c.cookie, calls: Number(c.cookie.calls ?? 0) + 1 });
  }
  const ended = endedBySession(mine, plugin);
  const v: Verdict = {
    participated: lastCookie.size,
    once: 0,
    missing: [],
    unexpected: [],
    duplicates: [],
    wrongCookie: [],
    cutOff: 0,
    unflagged: [],
    problems: [],
  };
  for (const id of lastCookie.keys()) if (!ended.has(id)) v.missing.push(id);
  for (const [key, list] of ended) {
    if (!lastCookie.has(key)) {
      v.unexpected.push(key);
      continue;
    }
    const id = list[0]!.session_id;
    const want = lastCookie.get(key)!;
    if (list.some((c) => Number(c.cookie.calls) !== want.calls)) v.wrongCookie.push(key);
    if (list.length === 1) {
      v.once++;
      continue;
    }
    const earlierKilled = list.slice(0, -1).every((c) => killed.has(c.pid));
    const flagged =
      list.slice(1).every((c) => c.redelivered === true) || redeliveryLogged(logs, id, `plugin:${plugin}`);
    const apartMs = list[list.length - 1]!.t - list[0]!.t;
    v.duplicates.push({ id, count: list.length, apartMs, allowed: earlierKilled && flagged });
  }
  checkRepeatsAfterKill(mine, killed, logs, plugin, v);
  if (v.missing.length) v.problems.push(`${v.missing.length} session(s) never got session_ended`);
  if (v.unexpected.length) v.problems.push(`${v.unexpected.length} session_ended for sessions never called`);
  if (v.unflagged.length)
    v.problems.push(`${v.unflagged.length} session_ended repeated after a kill without the redelivered flag`);
  if (v.wrongCookie.length) v.problems.push(`${v.wrongCookie.length} session_ended with a stale cookie`);
  const bad = v.duplicates.filter((d) => !d.allowed);
  if (bad.length) {
    const gaps = bad.map((d) => d.apartMs).sort((a, b) => a - b);
    v.problems.push(
      `${bad.length} of ${v.participated} sessions got session_ended more than once without a ` +
        `kill and a redelivered flag (median ${gaps[Math.floor(gaps.length / 2)]} ms apart)`,
    );
  }
  return v;
}

/**
 * A session_ended that a kill cut off (started in a killed pid, not finished there) may run
 * again; that next call must be flagged redelivered (to the plugin or in a gateway log line).
 */
function checkRepeatsAfterKill(
  calls: Call[],
  killed: Set<number>,
  logs: LogLine[],
  plugin: string,
  v: Verdict,
) {
  const starts = calls.filter((c) => c.hook === 'session_ended' && c.phase === 'start');
  const finished = new Set(
    calls
      .filter((c) => c.hook === 'session_ended' && c.phase !== 'start')
      .map((c) => `${c.pid}/${sessionKey(c)}`),
  );
  for (const cut of starts.filter((c) => killed.has(c.pid) && !finished.has(`${c.pid}/${sessionKey(c)}`))) {
    v.cutOff++;
    const next = starts.find((c) => sessionKey(c) === sessionKey(cut) && c.t >= cut.t && c !== cut);
    if (next && next.redelivered !== true && !redeliveryLogged(logs, next.session_id, `plugin:${plugin}`)) {
      v.unflagged.push(sessionKey(cut));
    }
  }
}

/** Audit closes: exactly one per session in `ids`, a repeat only flagged and after a kill. */
export function judgeAudit(closes: AuditClose[], ids: Iterable<string>, killedAny: boolean): string[] {
  const byId = new Map<string, AuditClose[]>();
  for (const c of closes) byId.set(c.session_id, [...(byId.get(c.session_id) ?? []), c]);
  const problems: string[] = [];
  let missing = 0;
  let repeated = 0;
  for (const id of ids) {
    const list = byId.get(id) ?? [];
    if (list.length === 0) missing++;
    else if (list.length > 1 && !(killedAny && list.slice(1).every((c) => c.redelivered === true)))
      repeated++;
  }
  if (missing) problems.push(`${missing} closed session(s) without a session_close audit record`);
  if (repeated)
    problems.push(`${repeated} session(s) with more than one session_close (not a flagged redelivery)`);
  return problems;
}

/** A short account of a verdict for assertion messages and the report. */
export function summary(v: Verdict): string {
  const dups = v.duplicates.map(
    (d) => `${d.id.slice(0, 8)}×${d.count}/${d.apartMs}ms${d.allowed ? '(ok)' : ''}`,
  );
  return (
    `participated ${v.participated}, exactly once ${v.once}, missing ${v.missing.length}, ` +
    `unexpected ${v.unexpected.length}, stale cookie ${v.wrongCookie.length}, ` +
    `cut off by a kill ${v.cutOff} (redelivered unflagged ${v.unflagged.length}), ` +
    `repeated ${v.duplicates.length}${dups.length ? ` [${dups.slice(0, 10).join(' ')}]` : ''}` +
    (v.problems.length ? `\nproblems: ${v.problems.join('; ')}` : '')
  );
}

/** From the kill to the next start of the session_ended the kill cut off (NaN: none was cut off). */
export function takeoverMs(calls: Call[], victimPid: number, killedAt: number): number {
  const mine = calls.filter((c) => c.hook === 'session_ended' && c.pid === victimPid);
  const cut = mine.find(
    (c) => c.phase === 'start' && !mine.some((d) => d.phase !== 'start' && d.session_id === c.session_id),
  );
  const again =
    cut &&
    calls.find(
      (c) =>
        c.hook === 'session_ended' &&
        c.phase === 'start' &&
        c.session_id === cut.session_id &&
        c.t > killedAt,
    );
  return again ? again.t - killedAt : NaN;
}
