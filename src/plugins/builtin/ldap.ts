import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Client, InvalidCredentialsError, type Entry } from 'ldapts';
import { z } from 'zod';
import type { JsonObject } from '../../core/session-types.js';
import { definePlugin, type AaHookResult, type AaPlugin } from '../define.js';
import { configPath, parsePluginConfig, requiredString } from './config.js';
import type { BuiltinEnvironment } from './environment.js';
import { LOGON_FAILED, PASSWORD_KEY } from './local-users.js';

const ms = z.int({ error: 'expected a whole number of milliseconds' }).min(1).max(600_000);

const configSchema = z
  .strictObject({
    /** `ldap://host:389` or `ldaps://host:636`. */
    url: requiredString('an ldap:// or ldaps:// URL').regex(/^ldaps?:\/\/[^/?#]+\/?$/i, {
      error: 'expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]',
    }),
    /** Direct bind: the user's DN, `{user}` replaced by the DN-escaped user name. */
    user_dn: z.string().includes('{user}', { error: 'must contain {user}' }).optional(),
    /** Search-then-bind: where and how to find the user's entry (`{user}` filter-escaped). */
    search_base: z.string().optional(),
    search_filter: z.string().includes('{user}', { error: 'must contain {user}' }).default('(uid={user})'),
    /** The service account that searches (absent: anonymous search). */
    bind_dn: z.string().optional(),
    bind_password: z.string().optional(),
    bind_password_file: z.string().optional(),
    /** Attributes of the user's entry to return (`session.ad.last.attr.<name>`). */
    attributes: z
      .array(z.string().regex(/^[A-Za-z][A-Za-z0-9-]*$/, { error: 'expected an attribute name' }))
      .default([]),
    /** Groups from an attribute of the user's entry holding group DNs (default memberOf)... */
    group_attribute: z.string().default('memberOf'),
    /** ...or from a search: groups under this base matching the filter (`{dn}`, `{user}`). */
    group_search_base: z.string().optional(),
    group_search_filter: z.string().default('(member={dn})'),
    /** The group's name: this attribute of a searched group, or the first RDN of a DN. */
    group_name_attribute: z.string().default('cn'),
    /** authorize: the user must be in at least one of these groups (none given = any user). */
    require_groups: z.array(z.string()).default([]),
    starttls: z.boolean().default(false),
    /** PEM file of the CA(s) to trust for ldaps:// and StartTLS (default: the system's). */
    ca_file: z.string().optional(),
    tls_reject_unauthorized: z.boolean().default(true),
    connect_timeout_ms: ms.default(5000),
    timeout_ms: ms.default(5000),
    password_prompt: z.string().default('Password'),
  })
  .superRefine((c, ctx) => {
    if ((c.user_dn === undefined) === (c.search_base === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['user_dn'],
        message: 'give user_dn (direct bind) or search_base (search, then bind), exactly one',
      });
    }
    if (c.bind_password !== undefined && c.bind_password_file !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['bind_password_file'],
        message: 'give bind_password or bind_password_file, not both',
      });
    }
  });

/** RFC 4514: escape a value for use inside a DN. */
export function escapeDnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=\0]/g, (c) => (c === '\0' ? '\\00' : `\\${c}`));
  if (out.startsWith(' ') || out.startsWith('#')) out = `\\${out}`;
  if (out.endsWith(' ') && !out.endsWith('\\ ')) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** RFC 4515: escape a value for use inside a search filter. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The value of the first RDN of a DN (`cn=admins,ou=groups,...` -> `admins`), unescaped. */
export function firstRdnValue(dn: string): string {
  const eq = dn.indexOf('=');
  let out = '';
  for (let i = eq + 1; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === ',' || c === '+') break;
    if (c === '\\' && i + 1 < dn.length) {
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9a-fA-F]{2}$/.test(hex)) {
        out += String.fromCharCode(parseInt(hex, 16));
        i += 2;
      } else {
        out += dn[++i];
      }
      continue;
    }
    out += c;
  }
  return out.trim();
}

function values(entry: Entry, name: string): string[] {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === name.toLowerCase());
  const v = key === undefined ? undefined : entry[key];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
}

/** The attribute values handed to the gateway: a string, or a list when there are several. */
export type LdapAttributes = Record<string, string | string[]>;

type LdapSettings = z.infer<typeof configSchema>;

/** The directory the settings name: connections, the user's DN and entry, the user's groups. */
class LdapDirectory {
  private readonly tlsOptions: ConnectionOptions;
  private readonly bindPassword: string | undefined;
  private readonly secure: boolean;

  constructor(
    private readonly s: LdapSettings,
    env: BuiltinEnvironment,
  ) {
    this.tlsOptions = { rejectUnauthorized: s.tls_reject_unauthorized };
    if (s.ca_file !== undefined) this.tlsOptions.ca = [readFileSync(configPath(env, s.ca_file), 'utf8')];
    this.bindPassword =
      s.bind_password_file !== undefined
        ? readFileSync(configPath(env, s.bind_password_file), 'utf8').replace(/\r?\n$/, '')
        : s.bind_password;
    this.secure = /^ldaps:/i.test(s.url);
  }

  /**
   * Bind as the user and read what ACCEPT carries; DENY for an unknown user or a wrong
   * password. A server that cannot be reached or fails throws.
   */
  async logon(user: string, password: string, sessionCookie: JsonObject): Promise<AaHookResult> {
    const client = await this.connect();
    try {
      const dn = await this.findDn(client, user);
      if (dn === undefined || !(await bindAs(client, dn, password))) {
        return { verdict: 'DENY', reason: LOGON_FAILED };
      }
      const { entry, attributes } = await this.readEntry(client, dn);
      const groups = await this.groupsOf(client, user, dn, entry);
      return {
        verdict: 'ACCEPT',
        gatewayUser: user,
        gatewayGroups: groups,
        additionalMetadata: JSON.stringify(attributes),
        cookie: { dn, groups },
        sessionCookie: { ...sessionCookie, ldap_attributes: attributes as JsonObject },
      };
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }

  private async connect(): Promise<Client> {
    const client = new Client({
      url: this.s.url,
      timeout: this.s.timeout_ms,
      connectTimeout: this.s.connect_timeout_ms,
      ...(this.secure ? { tlsOptions: this.tlsOptions } : {}),
    });
    if (this.s.starttls) await client.startTLS(this.tlsOptions);
    return client;
  }

  /** The user's DN, or undefined when the search finds no single entry. */
  private async findDn(client: Client, user: string): Promise<string | undefined> {
    const s = this.s;
    if (s.user_dn !== undefined) return s.user_dn.replaceAll('{user}', escapeDnValue(user));
    if (s.bind_dn !== undefined) await client.bind(s.bind_dn, this.bindPassword ?? '');
    const { searchEntries } = await client.search(s.search_base!, {
      scope: 'sub',
      filter: s.search_filter.replaceAll('{user}', escapeFilterValue(user)),
      attributes: ['1.1'],
      sizeLimit: 2,
    });
    return searchEntries.length === 1 ? searchEntries[0]!.dn : undefined;
  }

  /** The user's entry (with the group attribute when groups come from it) and the configured attributes. */
  private async readEntry(client: Client, dn: string) {
    const wanted = [...this.s.attributes];
    if (this.s.group_search_base === undefined) wanted.push(this.s.group_attribute);
    const { searchEntries } = await client.search(dn, {
      scope: 'base',
      filter: '(objectClass=*)',
      attributes: wanted,
    });
    const entry = searchEntries[0];
    const attributes: LdapAttributes = {};
    for (const name of this.s.attributes) {
      const v = entry ? values(entry, name) : [];
      if (v.length > 0) attributes[name] = v.length === 1 ? v[0]! : v;
    }
    return { entry, attributes };
  }

  private async groupsOf(
    client: Client,
    user: string,
    dn: string,
    entry: Entry | undefined,
  ): Promise<string[]> {
    const s = this.s;
    if (s.group_search_base === undefined) {
      return entry ? values(entry, s.group_attribute).map(firstRdnValue) : [];
    }
    const filter = s.group_search_filter
      .replaceAll('{dn}', escapeFilterValue(dn))
      .replaceAll('{user}', escapeFilterValue(user));
    const { searchEntries } = await client.search(s.group_search_base, {
      scope: 'sub',
      filter,
      attributes: [s.group_name_attribute],
    });
    return searchEntries.flatMap((g) => {
      const names = values(g, s.group_name_attribute);
      return names.length > 0 ? names.slice(0, 1) : [firstRdnValue(g.dn)];
    });
  }
}

/** Bind as `dn`: false when the directory refuses the password. */
async function bindAs(client: Client, dn: string, password: string): Promise<boolean> {
  try {
    await client.bind(dn, password);
    return true;
  } catch (err) {
    if (err instanceof InvalidCredentialsError) return false;
    throw err;
  }
}

/**
 * `ldap` (aa): bind as the user against an LDAP directory (ldapts).
 *
 * authenticate: `gateway_user` and `key_value_pairs.password` (NEEDINFO when absent), as for
 * local-users. The DN comes from `user_dn` (a template) or from a search under `search_base`
 * (as `bind_dn`, or anonymously). A rejected bind, an unknown user or an empty password is
 * DENY; an unreachable or failing server throws (the host counts a failure and denies).
 * ACCEPT carries `gateway_groups` (from `group_attribute` or a group search) and the
 * configured `attributes`, as JSON in `additional_metadata` and under `ldap_attributes` in the
 * session cookie (the gateway maps them to `session.ad.last.attr.<name>`).
 *
 * authorize: ACCEPT when this plugin authenticated the user in this session and, with
 * `require_groups`, the user is in at least one of them.
 */
export function ldap(config: Record<string, unknown>, env: BuiltinEnvironment): AaPlugin {
  const s = parsePluginConfig(configSchema, config, env);
  const directory = new LdapDirectory(s, env);
  return definePlugin({
    kind: 'aa',
    async authenticate({ gatewayUser, keyValuePairs, sessionCookie }): Promise<AaHookResult> {
      const password = keyValuePairs?.[PASSWORD_KEY];
      if (password === undefined) {
        return {
          verdict: 'NEEDINFO',
          question: { key: PASSWORD_KEY, prompt: s.password_prompt, disableEcho: true },
        };
      }
      // An empty password would be an unauthenticated bind, which servers accept.
      if (!gatewayUser || password === '') return { verdict: 'DENY', reason: LOGON_FAILED };
      return directory.logon(gatewayUser, password, sessionCookie);
    },

    authorize({ cookie }): AaHookResult {
      const groups = Array.isArray(cookie.groups) ? cookie.groups.map(String) : [];
      const inGroup = s.require_groups.length === 0 || s.require_groups.some((g) => groups.includes(g));
      if (typeof cookie.dn !== 'string' || !inGroup) return { verdict: 'DENY', reason: 'Access denied' };
      return { verdict: 'ACCEPT' };
    },

    sessionEnded() {},
  });
}
