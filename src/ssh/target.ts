import ssh2, { type AnyAuthMethod, type Client, type ConnectConfig } from 'ssh2';

// ssh2 is CommonJS: its values come from the default export.
const { Client: SshClient } = ssh2;

/** One way to log on to the target, in the order they are tried. */
export type TargetCredential = { kind: 'key'; key: string } | { kind: 'password'; password: string };

export interface TargetOptions {
  host: string;
  port: number;
  username: string;
  credentials: readonly TargetCredential[];
  /** true to go on; a message (naming the host and fingerprints) to refuse the target. */
  verifyHostKey(key: Buffer): true | string;
  timeoutMs: number;
}

/** The target logged on, with the credential that worked (its place in the list). */
export type TargetResult = { ok: true; client: Client; used: number } | { ok: false; message: string };

/**
 * Connect to the target server and log on with each credential in turn (keys and passwords
 * from the credential store, or the user's relayed password) on one connection, after its
 * host key was checked. Never throws: a failure comes back as the message for the user.
 *
 * @example
 * ```ts
 * const t = await connectTarget({ host: 'db1', port: 22, username: 'root', credentials, verifyHostKey, timeoutMs: 10_000 });
 * if (t.ok) t.client.exec('uptime', (err, ch) => ch.pipe(process.stdout));
 * ```
 */
export function connectTarget(o: TargetOptions): Promise<TargetResult> {
  const where = `${o.username}@${o.host}:${o.port}`;
  if (o.credentials.length === 0) {
    return Promise.resolve({ ok: false, message: `no credentials to log on to ${where}` });
  }
  return new Promise((resolveResult) => {
    const client = new SshClient();
    let hostKeyProblem: string | undefined;
    let tried = 0;
    let settled = false;
    const settle = (r: TargetResult): void => {
      if (settled) return;
      settled = true;
      if (!r.ok) client.end();
      resolveResult(r);
    };
    const config: ConnectConfig = {
      host: o.host,
      port: o.port,
      username: o.username,
      readyTimeout: o.timeoutMs,
      keepaliveInterval: 15_000,
      hostVerifier: (key: Buffer) => {
        const verdict = o.verifyHostKey(key);
        if (verdict === true) return true;
        hostKeyProblem = verdict;
        return false;
      },
      authHandler: (methodsLeft, _partial, next) => {
        const c = o.credentials[tried];
        // false: nothing more to try (the typings do not know it).
        if (c === undefined) return next(false as unknown as AnyAuthMethod);
        tried += 1;
        next(authFor(c, o.username, methodsLeft ?? []));
      },
    };
    client.on('ready', () => settle({ ok: true, client, used: tried - 1 }));
    client.on('error', (err: Error & { level?: string }) => {
      if (hostKeyProblem) return settle({ ok: false, message: hostKeyProblem });
      if (err.level === 'client-authentication') {
        const n = o.credentials.length;
        return settle({
          ok: false,
          message: `could not log on to ${where}: the target refused ${n === 1 ? 'the credential' : `all ${n} credentials`}`,
        });
      }
      settle({ ok: false, message: `could not connect to ${o.host}:${o.port}: ${err.message}` });
    });
    client.on('close', () => settle({ ok: false, message: `${o.host}:${o.port} closed the connection` }));
    client.connect(config);
  });
}

/** A password goes by `password`, or by keyboard-interactive where only that is offered. */
function authFor(c: TargetCredential, username: string, methodsLeft: string[]): AnyAuthMethod {
  if (c.kind === 'key') return { type: 'publickey', username, key: c.key };
  if (!methodsLeft.includes('password') && methodsLeft.includes('keyboard-interactive')) {
    return {
      type: 'keyboard-interactive',
      username,
      prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => c.password)),
    };
  }
  return { type: 'password', username, password: c.password };
}
