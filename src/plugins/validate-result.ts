import type { JsonObject } from '../core/session-types.js';
import { PluginCallError } from './errors.js';
import {
  HOOK_TABLE,
  HOOKS,
  hasHook,
  VERDICTS,
  type AaResult,
  type CredentialResult,
  type HookName,
  type HookResult,
  type PluginKind,
} from './types.js';

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

/** Control, format (bidi overrides, zero-width) and lone surrogate characters. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\u2028\u2029]/u;

interface TextRule {
  max: number;
  /** Whitespace (spaces, tabs, line breaks) is refused. */
  noSpace?: boolean;
  /** Line breaks and tabs are allowed (free text); other invisible characters never are. */
  multiline?: boolean;
  /** Further characters refused, e.g. `,` in a group name (groups are stored comma-joined). */
  refuse?: string;
}

/** The documented text types of a result field; throws `malformed` naming the field. */
function text(v: unknown, what: string, rule: TextRule): string {
  if (typeof v !== 'string') throw new PluginCallError('malformed', `${what} must be a string`);
  const min = rule.noSpace ? 1 : 0;
  if (v.length < min || v.length > rule.max) {
    throw new PluginCallError('malformed', `${what} must be ${min} to ${rule.max} characters long`);
  }
  const bare = rule.multiline ? v.replace(/[\t\n]|\r\n/g, '') : v;
  if (INVISIBLE.test(bare)) throw new PluginCallError('malformed', `${what} holds a control character`);
  if (rule.noSpace && /\s/u.test(v)) throw new PluginCallError('malformed', `${what} holds whitespace`);
  for (const c of rule.refuse ?? '') {
    if (v.includes(c)) throw new PluginCallError('malformed', `${what} holds ${JSON.stringify(c)}`);
  }
  return v;
}

/** A user name (or a question key): one line of visible characters, no whitespace. */
const NAME: TextRule = { max: 256, noSpace: true };
/** A group: visible characters and spaces, no comma. */
const GROUP: TextRule = { max: 256, refuse: ',' };
const PROMPT: TextRule = { max: 1024 };
const REASON: TextRule = { max: 4096, multiline: true };
/** Free text (metadata, passwords): any well-formed string; limited only by the message size. */
const FREE: TextRule = { max: Number.MAX_SAFE_INTEGER, multiline: true };

function textList(v: unknown, what: string, rule: TextRule): string[] {
  if (!Array.isArray(v)) throw new PluginCallError('malformed', `${what} must be a list of strings`);
  return v.map((x, i) => text(x, `${what}[${i}]`, rule));
}

const given = (v: unknown): boolean => v !== undefined && v !== null;

/** The checked cookies of any hook's result (absent = unchanged). */
export function cookiesOf(result: HookResult): { cookie?: JsonObject; sessionCookie?: JsonObject } {
  const r = (result ?? {}) as Record<string, unknown>;
  const out: { cookie?: JsonObject; sessionCookie?: JsonObject } = {};
  if (given(r.cookie)) out.cookie = jsonObject(r.cookie, 'cookie');
  if (given(r.session_cookie)) out.sessionCookie = jsonObject(r.session_cookie, 'session_cookie');
  return out;
}

/**
 * Check every field of a hook's result against its documented type (docs/plugins.md) and
 * return its cookies; throws `malformed` naming the first bad field, so the host denies
 * before anything of the result is stored.
 *
 * @example
 * ```ts
 * checkResult('authenticate', { verdict: 'ACCEPT', gateway_user: 'alice' }); // → {}
 * checkResult('authenticate', { verdict: 'ACCEPT', gateway_user: 'a\r\nb' }); // throws
 * ```
 */
export function checkResult(
  hook: HookName,
  result: HookResult,
): { cookie?: JsonObject; sessionCookie?: JsonObject } {
  if (given(result) && (typeof result !== 'object' || Array.isArray(result))) {
    throw new PluginCallError('malformed', `${hook} must return an object or nothing`);
  }
  const answer = HOOK_TABLE[hook].answer;
  if (answer === 'verdict') aaResult(result);
  if (answer === 'credentials') credentialResult(result);
  return cookiesOf(result);
}

function question(q: unknown): NonNullable<AaResult['question']> {
  if (!q || typeof q !== 'object' || Array.isArray(q)) {
    throw new PluginCallError('malformed', 'question must be an object { key, prompt, disable_echo }');
  }
  const { key, prompt, disable_echo: echoOff, redirect, otpauth } = q as Record<string, unknown>;
  if (given(echoOff) && typeof echoOff !== 'boolean' && echoOff !== 0 && echoOff !== 1) {
    throw new PluginCallError('malformed', 'question.disable_echo must be true or false');
  }
  const out: NonNullable<AaResult['question']> = {
    key: text(key, 'question.key', { max: 128, noSpace: true }),
    prompt: text(prompt, 'question.prompt', PROMPT),
    disable_echo: echoOff !== false && echoOff !== 0,
  };
  if (given(redirect)) out.redirect = redirectUrl(redirect);
  if (given(otpauth)) {
    out.otpauth = text(otpauth, 'question.otpauth', { max: 2048, noSpace: true });
    if (!out.otpauth.startsWith('otpauth://totp/'))
      throw new PluginCallError('malformed', 'question.otpauth must be an otpauth://totp/ URI');
  }
  return out;
}

/** Where a question sends the browser to be answered (an identity provider): an absolute http(s) URL. */
function redirectUrl(v: unknown): string {
  const url = text(v, 'question.redirect', { max: 8192, noSpace: true });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PluginCallError('malformed', 'question.redirect must be an absolute URL');
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new PluginCallError('malformed', 'question.redirect must be an http or https URL');
  }
  return url;
}

/** Variables a plugin may set: its own names under session.oauth. or session.custom. */
const PLUGIN_VARIABLE = /^session\.(?:oauth|custom)\.[A-Za-z0-9_.:-]{1,128}$/;

function variables(v: unknown, what: string): Record<string, string> {
  if (!isPlainObject(v)) throw new PluginCallError('malformed', `${what} must be an object of name: value`);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(v)) {
    if (!PLUGIN_VARIABLE.test(name)) {
      throw new PluginCallError(
        'malformed',
        `${what}: ${JSON.stringify(name.slice(0, 80))} is not under session.oauth. or session.custom.`,
      );
    }
    out[name] = text(value, `${what}.${name}`, { max: 65_536, multiline: true });
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
      `verdict must be one of ${VERDICTS.join(', ')}, got ${JSON.stringify(verdict)?.slice(0, 40)}`,
    );
  }
  const out: AaResult = { verdict: verdict as AaResult['verdict'] };
  if (verdict === 'NEEDINFO' && !given(r.question)) {
    throw new PluginCallError('malformed', 'NEEDINFO needs question: { key, prompt }');
  }
  if (given(r.question)) {
    const q = question(r.question);
    if (verdict === 'NEEDINFO') out.question = q;
  }
  if (given(r.gateway_user)) out.gateway_user = text(r.gateway_user, 'gateway_user', NAME);
  if (given(r.gateway_groups)) out.gateway_groups = textList(r.gateway_groups, 'gateway_groups', GROUP);
  if (given(r.additional_metadata)) {
    out.additional_metadata = text(r.additional_metadata, 'additional_metadata', FREE);
  }
  if (given(r.reason)) out.reason = text(r.reason, 'reason', REASON);
  if (given(r.session_variables)) out.session_variables = variables(r.session_variables, 'session_variables');
  if (given(r.secure_variables)) out.secure_variables = variables(r.secure_variables, 'secure_variables');
  return out;
}

/** Check a credential-store list result; an empty or absent list means none found. */
export function credentialResult(result: HookResult): CredentialResult {
  const r = (result ?? {}) as Record<string, unknown>;
  const out: CredentialResult = {};
  if (given(r.passwords)) out.passwords = textList(r.passwords, 'passwords', FREE);
  if (given(r.private_keys)) {
    if (!Array.isArray(r.private_keys)) {
      throw new PluginCallError('malformed', 'private_keys must be a list of [type, pem] pairs');
    }
    out.private_keys = r.private_keys.map((k: unknown, i) => {
      if (!Array.isArray(k) || k.length !== 2) {
        throw new PluginCallError('malformed', `private_keys[${i}] must be a [type, pem] pair`);
      }
      const type = text(k[0], `private_keys[${i}][0]`, { max: 64, noSpace: true });
      return [type, text(k[1], `private_keys[${i}][1]`, FREE)] as [string, string];
    });
  }
  return out;
}

/** Refuses a hook that plugins of `kind` do not have (`not_implemented`, naming theirs). */
export function checkKind(kind: PluginKind, hook: string): void {
  if (!hasHook(kind, hook)) {
    throw new PluginCallError(
      'not_implemented',
      `${hook} is not a hook of ${kind} plugins (${HOOKS[kind].join(', ')})`,
    );
  }
}
