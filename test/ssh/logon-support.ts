import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2, { type Client, type ConnectConfig } from 'ssh2';
import { generateEd25519KeyPair } from '../../src/ssh/host-keys.js';
import { enrolTotp } from '../../src/plugins/builtin/totp.js';
import { base32Decode, hotp, timeStep } from '../../src/plugins/builtin/totp-code.js';
import { UsersFileEditor } from '../../src/plugins/builtin/users-file.js';
import type { Keyring } from '../../src/session/keyring.js';
import { until, type Closed, type SshFixture } from './harness.js';

// Helpers of the SSH logon tests (logon.test.ts): sessions by their audit records, an ssh2
// client that records its keyboard-interactive prompts, and key files for the real client.

const { Client: SshClient } = ssh2;

/** The ids of the sessions started since `mark` (a count of audit records). */
export const startedSince = (fx: SshFixture, mark: number): string[] =>
  fx.audit.slice(mark).flatMap((e) => (e.event === 'session_start' ? [e.sessionId] : []));

/** The closes of the `count` sessions started since `mark`, once all arrived (start order). */
export async function closesSince(fx: SshFixture, mark: number, count = 1): Promise<Closed[]> {
  const ids = startedSince(fx, mark);
  assert.equal(ids.length, count, 'sessions started');
  const find = (id: string) => fx.closed.find((c) => c.sessionId === id);
  await until(() => ids.every(find), 5000, 'sessions closed');
  return ids.map((id) => find(id)!);
}

export interface Attempt {
  client?: Client;
  error?: Error;
  prompts: string[];
  instructions: string[];
}

/** Connect an ssh2 client; keyboard-interactive prompts are answered by `answer`. */
export function connect(port: number, o: Partial<ConnectConfig>, answer?: (prompt: string) => string) {
  const client = new SshClient();
  const seen: Attempt = { prompts: [], instructions: [] };
  client.on('keyboard-interactive', (_name, instructions, _lang, prompts, finish) => {
    if (instructions) seen.instructions.push(instructions);
    seen.prompts.push(...prompts.map((p) => p.prompt));
    finish(prompts.map((p) => answer?.(p.prompt) ?? ''));
  });
  return new Promise<Attempt>((done) => {
    client.once('ready', () => done({ ...seen, client }));
    // Only the first error counts; a reset after the refusal must not go unhandled.
    client.on('error', (error) => done({ ...seen, error }));
    client.connect({ host: '127.0.0.1', port, readyTimeout: 10_000, ...o });
  });
}

/** Run a command on a logged-on ssh2 client: its output and exit code. */
export function exec(client: Client, command: string): Promise<{ out: string; code: number | null }> {
  return new Promise((done, fail) =>
    client.exec(command, (err, ch) => {
      if (err) return fail(err);
      let out = '';
      let code: number | null = null;
      ch.on('data', (d: Buffer) => (out += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (out += d.toString()));
      ch.on('exit', (c: number | null) => (code = c));
      ch.on('close', () => done({ out, code }));
    }),
  );
}

export interface KeyFile {
  /** The private key (OpenSSH format, mode 0600), for `ssh -i`. */
  file: string;
  /** Its authorized_keys line. */
  publicLine: string;
}

/** A new ed25519 key pair; the private half written to `dir/name`. */
export function writeKeyPair(dir: string, name: string): KeyFile {
  const key = generateEd25519KeyPair(name);
  const file = join(dir, name);
  writeFileSync(file, key.private, { mode: 0o600 });
  return { file, publicLine: key.public };
}

/** Enrol the users (already in the users file) for TOTP: their secrets by user. */
export function enrolUsers(usersFile: string, keyring: Keyring, users: string[]): Map<string, string> {
  const editor = UsersFileEditor.open(usersFile);
  const secrets = new Map<string, string>();
  for (const user of users) {
    const uri = new URL(enrolTotp(editor, user, keyring, 'sessiongate-test'));
    secrets.set(user, uri.searchParams.get('secret')!);
  }
  editor.save();
  return secrets;
}

/** A well-formed code that no time step the totp plugin accepts now has. */
export function wrongCode(secret: string): string {
  const key = base32Decode(secret);
  const valid = new Set([-2, -1, 0, 1, 2].map((d) => hotp(key, timeStep(Date.now()) + d)));
  let n = 123_456;
  while (valid.has(String(n))) n++;
  return String(n);
}
