import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2, { type Client, type ClientChannel } from 'ssh2';
import type { AuditEvent } from '../../src/core/audit.js';
import { ManualClock } from '../../src/core/clock.js';
import type { SessionRecord } from '../../src/core/session-types.js';
import { parseConfig } from '../../src/gateway/config/load.js';
import { startGateway, type RunningGateway } from '../../src/gateway/assemble.js';
import { writeCredentials } from '../../src/plugins/builtin/credentials-file.js';
import { hashPassword } from '../../src/plugins/builtin/password.js';
import { Keyring } from '../../src/session/keyring.js';
import { SshGateway } from '../../src/ssh/server.js';
import { recordingLogger } from '../plugins/helpers.js';
import type { SshdTarget } from '../support/sshd.js';

const { Client: SshClient } = ssh2;

/** A close the pipeline delivered: which session, why, and the plugins it owed session_ended. */
export interface Closed {
  sessionId: string;
  reason: string;
  snapshot: SessionRecord;
}

export interface SshFixture {
  gw: RunningGateway;
  ssh: SshGateway;
  clock: ManualClock;
  logs: ReturnType<typeof recordingLogger>;
  audit: AuditEvent[];
  closed: Closed[];
  dir: string;
  /** `-l` value for the real ssh client: `gu=alice@root@127.0.0.1+PORT` and such. */
  close(): Promise<void>;
}

/**
 * The standard SSH test config: local users alice/wonderland and bob/builder (group ops), a
 * file-credentials store holding the sshd's user key for root@127.0.0.1, the sshd's host key in
 * known_hosts, and one SSH route to it. `${...}` in `extra` is replaced from `vars`.
 */
export function standardConfig(
  sshd: SshdTarget,
  o: { route?: string; profile?: string; ssh?: string; plugins?: string } = {},
): string {
  return `
store: memory
keys: \${DIR}/keyring.json
plugins:
  - { name: users, runtime: builtin, type: local-users, config: { users_file: ./users.yaml } }
  - { name: vault, runtime: builtin, type: file-credentials, config: { credentials_file: ./creds.json } }
${o.plugins ?? ''}
profiles:
  ssh:
    inactivity_timeout: 60
    policy: ${o.profile ?? '[ logon, { authenticate: users }, allow ]'}
routes:
  - { upstream: "http://127.0.0.1:9" }
ssh:
  listen: { port: 0 }
  host_keys: [ ./ssh_host_key ]
  known_hosts: ./known_hosts
  check_interval_ms: 60000
${o.ssh ?? ''}
  routes:
${
  o.route ??
  `    - hosts: [ 127.0.0.1, localhost ]
      ports: [ ${sshd.port} ]
      profile: ssh
      credentials: { plugin: vault }
      allow:
        - { users: [alice], target_users: [${sshd.user}] }
        - { groups: [ops], target_users: [nobody] }`
}
`;
}

/**
 * A gateway (memory store, manual clock, no failure delay) with its SSH listener on a free
 * port, the target's key in the credential store and its host key in known_hosts.
 */
export async function startSshFixture(
  yaml: string,
  sshd: SshdTarget | undefined,
  prepare?: (dir: string, keyring: Keyring) => void,
): Promise<SshFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-ssh-'));
  const keyring = Keyring.loadOrCreate(join(dir, 'keyring.json'));
  writeFileSync(
    join(dir, 'users.yaml'),
    `users:\n  alice:\n    password: ${await hashPassword('wonderland', { N: 1024, r: 8, p: 1 })}\n` +
      `  bob:\n    password: ${await hashPassword('builder', { N: 1024, r: 8, p: 1 })}\n    groups: [ops]\n`,
  );
  if (sshd) {
    writeFileSync(join(dir, 'known_hosts'), sshd.knownHostsLine + '\n');
    writeCredentials(
      join(dir, 'creds.json'),
      keyring,
      new Map([
        [`${sshd.user}@127.0.0.1`, { passwords: [], private_keys: [['ssh-ed25519', sshd.userPrivateKey]] }],
      ]),
    );
  }
  prepare?.(dir, keyring);
  const loaded = parseConfig(yaml.replaceAll('${DIR}', dir), 'test.yaml', dir);
  const clock = new ManualClock(Date.now());
  const logs = recordingLogger();
  const audit: AuditEvent[] = [];
  const sink = { write: (e: AuditEvent) => void audit.push(e) };
  const gw = await startGateway(loaded, {
    logger: logs,
    clock,
    port: 0,
    failureDelayMs: () => 0,
    audit: sink,
  });
  const closed: Closed[] = [];
  await gw.engine.onClose(
    'test',
    async (e) => void closed.push({ sessionId: e.sessionId, reason: e.reason, snapshot: e.snapshot }),
  );
  // A gateway left listening after a failed start keeps the test file from ever ending.
  const ssh = await SshGateway.start({
    config: { ...loaded.config, ssh: loaded.config.ssh! },
    baseDir: dir,
    engine: gw.engine,
    host: gw.host,
    rules: gw.rules,
    logger: logs,
    audit: sink,
    clock,
    port: 0,
    failureDelayMs: () => 0,
  }).catch(async (err: unknown) => {
    await gw.close(1000);
    throw err;
  });
  return {
    gw,
    ssh,
    clock,
    logs,
    audit,
    closed,
    dir,
    close: async () => {
      await ssh.close();
      await gw.close(1000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Poll until `check` holds (for what other processes and sockets do); fails after `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * An ssh2 client logged on through the gateway: keyboard-interactive prompts are answered from
 * `answers` in order (the gateway password by default).
 */
export async function gatewayClient(
  port: number,
  username: string,
  answers: string[] = ['wonderland'],
): Promise<Client> {
  const client = new SshClient();
  const queue = [...answers];
  client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) =>
    finish(prompts.map(() => queue.shift() ?? '')),
  );
  await new Promise<void>((resolveReady, reject) => {
    client.once('ready', () => resolveReady());
    client.once('error', reject);
    client.connect({ host: '127.0.0.1', port, username, tryKeyboard: true, readyTimeout: 10_000 });
  });
  return client;
}

/** A shell with a pty on a logged-on client; its output collected as text. */
export async function openShell(
  client: Client,
): Promise<{ channel: ClientChannel; output: () => string; exit: Promise<number | null> }> {
  const channel = await new Promise<ClientChannel>((done, fail) =>
    client.shell({ term: 'xterm', rows: 24, cols: 80 }, (err, ch) => (err ? fail(err) : done(ch))),
  );
  let text = '';
  channel.on('data', (d: Buffer) => (text += d.toString()));
  channel.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const exit = new Promise<number | null>((done) => {
    let code: number | null = null;
    channel.on('exit', (c: number | null) => (code = c));
    channel.on('close', () => done(code));
  });
  return { channel, output: () => text, exit };
}
