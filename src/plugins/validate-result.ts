import type { JsonObject } from '../core/session-types.js';
import { PluginCallError } from './errors.js';
import { VERDICTS, type AaResult, type CredentialResult, type HookResult, type PluginKind } from './types.js';

/** A copy of `value` if it is a plain JSON object (what a cookie must be); throws otherwise. */
export function jsonObject(value: unknown, what: string): JsonObject {
  if (!isPlainObject(value)) throw new PluginCallError('malformed', `${what} must be an object`);
  checkJson(value, what, new Set());
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function checkJson(v: unknown, path: string, seen: Set<unknown>): void {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new PluginCallError('malformed', `${path} is not a finite number`);
    return;
  }
  if (typeof v !== 'object') throw new PluginCallError('malformed', `${path} is a ${typeof v}, not JSON`);
  if (seen.has(v)) throw new PluginCallError('malformed', `${path} refers to itself`);
  seen.add(v);
  if (Array.isArray(v)) v.forEach((x, i) => checkJson(x, `${path}[${i}]`, seen));
  else if (!isPlainObject(v)) throw new PluginCallError('malformed', `${path} is not a plain object`);
  else for (const [k, x] of Object.entries(v)) checkJson(x, `${path}.${k}`, seen);
  seen.delete(v);
}

function stringArray(v: unknown, what: string): string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new PluginCallError('malformed', `${what} must be a list of strings`);
  }
  return v;
}

/** The checked cookies of any hook's result (absent = unchanged). */
export function cookiesOf(result: HookResult): { cookie?: JsonObject; sessionCookie?: JsonObject } {
  const r = (result ?? {}) as Record<string, unknown>;
  const out: { cookie?: JsonObject; sessionCookie?: JsonObject } = {};
  if (r.cookie !== undefined && r.cookie !== null) out.cookie = jsonObject(r.cookie, 'cookie');
  if (r.session_cookie !== undefined && r.session_cookie !== null) {
    out.sessionCookie = jsonObject(r.session_cookie, 'session_cookie');
  }
  return out;
}

/** Check an `aa` result: a known verdict, a question with NEEDINFO, typed optional fields. */
export function aaResult(result: HookResult): AaResult {
  const r = (result ?? {}) as Record<string, unknown>;
  const verdict = r.verdict;
  if (typeof verdict !== 'string' || !(VERDICTS as readonly string[]).includes(verdict)) {
    throw new PluginCallError(
      'malformed',
      `verdict must be one of ${VERDICTS.join(', ')}, got ${JSON.stringify(verdict)}`,
    );
  }
  const out: AaResult = { verdict: verdict as AaResult['verdict'] };
  if (verdict === 'NEEDINFO') {
    const q = r.question as Record<string, unknown> | undefined;
    if (!q || typeof q.key !== 'string' || !q.key || typeof q.prompt !== 'string') {
      throw new PluginCallError('malformed', 'NEEDINFO needs question: { key, prompt }');
    }
    out.question = {
      key: q.key,
      prompt: q.prompt,
      disable_echo: q.disable_echo !== false && q.disable_echo !== 0,
    };
  }
  if (r.gateway_user !== undefined && r.gateway_user !== null) {
    if (typeof r.gateway_user !== 'string')
      throw new PluginCallError('malformed', 'gateway_user must be a string');
    out.gateway_user = r.gateway_user;
  }
  if (r.gateway_groups !== undefined && r.gateway_groups !== null) {
    out.gateway_groups = stringArray(r.gateway_groups, 'gateway_groups');
  }
  for (const k of ['additional_metadata', 'reason'] as const) {
    if (r[k] !== undefined && r[k] !== null) out[k] = String(r[k]);
  }
  return out;
}

/** Check a credential-store list result; an empty or absent list means none found. */
export function credentialResult(result: HookResult): CredentialResult {
  const r = (result ?? {}) as Record<string, unknown>;
  const out: CredentialResult = {};
  if (r.passwords !== undefined && r.passwords !== null)
    out.passwords = stringArray(r.passwords, 'passwords');
  if (r.private_keys !== undefined && r.private_keys !== null) {
    const keys = r.private_keys;
    if (
      !Array.isArray(keys) ||
      !keys.every(
        (k) => Array.isArray(k) && k.length === 2 && typeof k[0] === 'string' && typeof k[1] === 'string',
      )
    ) {
      throw new PluginCallError('malformed', 'private_keys must be a list of [type, pem] pairs');
    }
    out.private_keys = keys as [string, string][];
  }
  return out;
}

export function checkKind(
  kind: PluginKind,
  hook: string,
  hooks: Record<PluginKind, readonly string[]>,
): void {
  if (!hooks[kind].includes(hook)) {
    throw new PluginCallError(
      'not_implemented',
      `${hook} is not a hook of ${kind} plugins (${hooks[kind].join(', ')})`,
    );
  }
}
