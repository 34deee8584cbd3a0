import { readFileSync } from 'node:fs';
import { isMap, parseDocument, YAMLMap, type Document } from 'yaml';
import { z } from 'zod';
import { SessionGateError } from '../../core/errors.js';
import { writeFileAtomic } from './files.js';
import { isPasswordHash } from './password.js';

/**
 * The users file of the `local-users` and `totp` plugins (YAML), edited by `sessiongate users`:
 *
 * ```yaml
 * users:
 *   alice:
 *     password: scrypt$32768$8$1$<salt>$<hash>   # scrypt, base64url salt and hash
 *     groups: [admins, ops]                      # optional; become gateway_groups
 *     disabled: true                             # optional; refuses logon and authorization
 *     totp: sg1.<key>.<iv>.<tag>.<body>          # optional; TOTP secret sealed with the key ring
 * ```
 */
export interface UserRecord {
  password?: string;
  groups: string[];
  disabled: boolean;
  /** The base32 TOTP secret, sealed with the key ring under context `totp:<name>`. */
  totp?: string;
}

export type Users = ReadonlyMap<string, UserRecord>;

/** Letters, digits and `._@+-`, starting with a letter or digit, at most 128 characters. */
export const USER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$/;

export function isUserName(name: string): boolean {
  return USER_NAME_RE.test(name);
}

const userSchema = z.strictObject(
  {
    password: z
      .string({ error: 'expected a string' })
      .refine(isPasswordHash, { error: 'expected an scrypt hash (scrypt$N$r$p$salt$hash)' })
      .optional(),
    groups: z
      .array(z.string({ error: 'expected a string' }), { error: 'expected a list of group names' })
      .default([]),
    disabled: z.boolean({ error: 'expected true or false' }).default(false),
    totp: z
      .string({ error: 'expected a sealed secret' })
      .regex(/^sg1\./, { error: 'expected a sealed secret (written by sessiongate users totp)' })
      .optional(),
  },
  { error: 'expected a mapping (password, groups, disabled, totp)' },
);

const fileSchema = z.strictObject(
  {
    users: z.preprocess(
      (v) => v ?? {},
      z.record(
        z.string().regex(USER_NAME_RE, {
          error: 'user names are letters, digits and ._@+- (starting with a letter or digit)',
        }),
        z.preprocess((v) => v ?? {}, userSchema),
        { error: 'expected a mapping of user names' },
      ),
    ),
  },
  { error: 'expected a mapping with a "users" key' },
);

/** One line naming the file and the path of the first problem. */
export class UsersFileError extends SessionGateError {
  constructor(message: string) {
    super('SG_ERR_CONFIG', message);
    this.name = 'UsersFileError';
  }
}

function pathOf(path: PropertyKey[]): string {
  return path.map(String).join('.');
}

function check(doc: unknown, file: string): Users {
  const parsed = fileSchema.safeParse(doc ?? {});
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    const where = first.path.length > 0 ? `${pathOf(first.path)}: ` : '';
    throw new UsersFileError(`${file}: ${where}${first.message}`);
  }
  const out = new Map<string, UserRecord>();
  for (const [name, u] of Object.entries(parsed.data.users)) {
    const record: UserRecord = { groups: u.groups, disabled: u.disabled };
    if (u.password !== undefined) record.password = u.password;
    if (u.totp !== undefined) record.totp = u.totp;
    out.set(name, record);
  }
  return out;
}

function parseYamlDocument(text: string, file: string): Document {
  const doc = parseDocument(text, { uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const first = (err.message.split('\n')[0] ?? 'invalid YAML').replace(/:$/, '');
    throw new UsersFileError(`${file}: invalid YAML: ${first}`);
  }
  return doc;
}

/** Parse and check the text of a users file (`file` names it in errors). */
export function parseUsers(text: string, file: string): Users {
  return check(parseYamlDocument(text, file).toJS(), file);
}

const HEADER = ' sessiongate users: edit with `sessiongate users ...` (see docs/plugins.md)';

/**
 * Edits a users file and keeps what it does not touch (other users, comments, order). Nothing
 * is written before `save()`, which checks the result again and replaces the file atomically
 * with mode 0600; a file that does not parse is never overwritten.
 */
export class UsersFileEditor {
  private constructor(
    readonly path: string,
    private readonly doc: Document,
    private users: Users,
  ) {}

  /** Read the file (a missing file is an empty one). */
  static open(path: string): UsersFileEditor {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new UsersFileError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      text = '';
    }
    const doc = parseYamlDocument(text, path);
    const users = check(doc.toJS(), path);
    if (!isMap(doc.contents)) {
      doc.contents = new YAMLMap();
      doc.commentBefore = HEADER;
    }
    if (!isMap(doc.get('users'))) doc.set('users', new YAMLMap());
    return new UsersFileEditor(path, doc, users);
  }

  list(): Users {
    return this.users;
  }

  get(name: string): UserRecord | undefined {
    return this.users.get(name);
  }

  /** Set fields of a user (created when absent); `undefined` leaves a field as it is. */
  set(
    name: string,
    fields: { password?: string; groups?: string[]; disabled?: boolean; totp?: string },
  ): void {
    if (!isUserName(name)) throw new UsersFileError(`invalid user name: ${USER_NAME_RE.source}`);
    if (!isMap(this.doc.getIn(['users', name]))) this.doc.setIn(['users', name], new YAMLMap());
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      const node = Array.isArray(value) ? this.doc.createNode(value, { flow: true }) : value;
      this.doc.setIn(['users', name, key], node);
    }
    this.users = check(this.doc.toJS(), this.path);
  }

  /** Remove a user; false when there was none. */
  remove(name: string): boolean {
    if (!this.users.has(name)) return false;
    this.doc.deleteIn(['users', name]);
    this.users = check(this.doc.toJS(), this.path);
    return true;
  }

  /** Write the file: checked again, then temp file + rename, mode 0600. */
  save(): void {
    const text = this.doc.toString();
    parseUsers(text, this.path);
    writeFileAtomic(this.path, text);
  }
}
