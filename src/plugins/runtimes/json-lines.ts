import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../../core/logger.js';
import { PluginCallError } from '../errors.js';

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  sessionId: string;
}

export interface ChildSpec {
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Extra pipe for the protocol (fd 3) instead of stdout; stdout is then plain output. */
  protocolOnFd3: boolean;
}

/**
 * A long-lived child process that answers requests `{"id", "hook", "args"}` with
 * `{"id", "result"}` or `{"id", "error"}`, one JSON object a line; several calls may be in
 * flight and are matched by id. It is started on first use and again after it dies; calls in
 * flight when it dies fail as `crash`. Output that is not protocol is logged, tagged with the
 * session of the call it came with when that is known.
 */
export class JsonLinesChild {
  private child: ChildProcess | undefined;
  private input: Writable | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  constructor(
    private readonly spec: ChildSpec,
    private readonly plugin: string,
    private readonly logger: Logger,
  ) {}

  request(
    hook: string,
    args: unknown,
    sessionId: string,
    extra: Record<string, unknown> = {},
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new PluginCallError('crash', 'plugin runtime is closed'));
    const input = this.ensure();
    const id = this.nextId++;
    let line: string;
    try {
      line = JSON.stringify({ id, hook, args, ...extra }) + '\n';
    } catch (err) {
      return Promise.reject(
        new PluginCallError('malformed', `arguments are not JSON: ${(err as Error).message}`),
      );
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, sessionId });
      input.write(line);
    });
  }

  /** Kill the child (a hung call); the next request starts a new one. */
  restart(reason: string): void {
    const child = this.child;
    this.detach(new PluginCallError('crash', reason));
    child?.kill('SIGKILL');
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    this.detach(new PluginCallError('crash', 'plugin runtime closed'));
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
  }

  private ensure(): Writable {
    if (this.child && this.input) return this.input;
    const stdio: ('pipe' | 'ignore')[] = this.spec.protocolOnFd3
      ? ['pipe', 'pipe', 'pipe', 'pipe']
      : ['pipe', 'pipe', 'pipe'];
    const child = spawn(this.spec.command, this.spec.args, { cwd: this.spec.cwd, env: this.spec.env, stdio });
    this.child = child;
    this.input = child.stdin!;
    child.stdin!.on('error', () => undefined); // EPIPE after a crash: reported through 'exit'
    const protocol = (this.spec.protocolOnFd3 ? child.stdio[3] : child.stdout) as Readable;
    createInterface({ input: protocol }).on('line', (l) => this.onProtocolLine(l));
    if (this.spec.protocolOnFd3) this.logLines(child.stdout!, 'stdout');
    this.logLines(child.stderr!, 'stderr');
    child.on('error', (err) => {
      if (this.child === child)
        this.detach(new PluginCallError('crash', `cannot start plugin: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      if (this.child === child)
        this.detach(new PluginCallError('crash', `plugin exited (${signal ?? code})`));
    });
    return this.input;
  }

  private detach(err: PluginCallError): void {
    this.child = undefined;
    this.input = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private onProtocolLine(line: string): void {
    if (!line.trim()) return;
    let msg: { id?: unknown; result?: unknown; error?: unknown; log?: unknown; stream?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.logger.warn(
        { plugin: this.plugin, output: line.slice(0, 200) },
        'plugin printed a line that is not JSON',
      );
      return;
    }
    const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (typeof msg.log === 'string') {
      this.logger.info(
        { plugin: this.plugin, sessionId: p?.sessionId, stream: msg.stream ?? 'log' },
        msg.log,
      );
      return;
    }
    if (!p) {
      this.logger.warn({ plugin: this.plugin }, 'plugin answered an unknown request id');
      return;
    }
    this.pending.delete(msg.id as number);
    if (msg.error !== undefined) p.reject(new PluginCallError('exception', String(msg.error)));
    else p.resolve(msg.result);
  }

  private logLines(stream: Readable, name: string): void {
    createInterface({ input: stream }).on('line', (line) => {
      // Unframed output cannot be tied to a call when several are in flight.
      const only = this.pending.size === 1 ? [...this.pending.values()][0] : undefined;
      this.logger.info({ plugin: this.plugin, sessionId: only?.sessionId, stream: name }, line);
    });
  }
}
