/**
 * A small SSH server (the `ssh2` package) that logs in one user with one password, for the
 * gateway tests that need password logons: a real sshd would need the account's system
 * password, which the tests never set. It records every password tried, answers `exec` with
 * `ran: <command>` (the command `exit N` ends with status N; nothing is ever run), and echoes a
 * `shell` back (with or without a pty).
 */
import type { AddressInfo } from 'node:net';
import ssh2, { type Connection, type ServerChannel, type Session } from 'ssh2';
import { generateEd25519KeyPair } from '../../src/ssh/host-keys.js';

// ssh2 is CommonJS whose exports Node cannot name statically: take them from the default export.
const { Server } = ssh2;

export interface PasswordTarget {
  host: '127.0.0.1';
  port: number;
  /** `ssh-ed25519 AAAA...` */
  hostKeyLine: string;
  /** `[127.0.0.1]:PORT ssh-ed25519 AAAA...` */
  knownHostsLine: string;
  /** Every password tried (right or wrong), in order. */
  logons: string[];
  /** Every command run with exec, in order. */
  commands: string[];
  stop(): Promise<void>;
}

/** `exit N` → N; anything else → 0. */
const exitStatus = (command: string): number => Number(/^\s*exit\s+(\d+)\s*$/.exec(command)?.[1] ?? 0);

function session(accept: () => Session, commands: string[]): void {
  const s = accept();
  s.on('pty', (ok) => ok?.());
  s.on('env', (ok) => ok?.());
  s.on('window-change', (ok) => ok?.());
  s.on('exec', (ok, _reject, info) => {
    commands.push(info.command);
    const stream: ServerChannel = ok();
    const status = exitStatus(info.command);
    if (!/^\s*exit\s/.test(info.command)) stream.write(`ran: ${info.command}\n`);
    stream.exit(status);
    stream.end();
  });
  s.on('shell', (ok) => {
    const stream: ServerChannel = ok();
    stream.on('data', (d: Buffer) => stream.write(d));
    stream.on('end', () => {
      stream.exit(0);
      stream.end();
    });
  });
}

/**
 * Start the server on a free loopback port.
 * @example
 * const target = await startPasswordTarget({ user: 'alice', password: 'pw' });
 * t.after(() => target.stop());
 * await runSsh([`alice@127.0.0.1`, 'exit 4'], { port: target.port, password: 'pw' }); // code 4
 */
export async function startPasswordTarget(opts: { user: string; password: string }): Promise<PasswordTarget> {
  const key = generateEd25519KeyPair();
  const logons: string[] = [];
  const commands: string[] = [];
  const clients = new Set<Connection>();
  const server = new Server({ hostKeys: [key.private] }, (client) => {
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => undefined); // a client dropping the connection is not our failure
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'password') return ctx.reject(['password']);
      logons.push(ctx.password);
      if (ctx.username === opts.user && ctx.password === opts.password) ctx.accept();
      else ctx.reject(['password']);
    });
    client.on('ready', () => client.on('session', (accept) => session(accept, commands)));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const hostKeyLine = key.public.trim().split(/\s+/).slice(0, 2).join(' ');
  return {
    host: '127.0.0.1',
    port,
    hostKeyLine,
    knownHostsLine: `[127.0.0.1]:${port} ${hostKeyLine}`,
    logons,
    commands,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const c of clients) c.end();
        server.close(() => resolve());
      }),
  };
}
