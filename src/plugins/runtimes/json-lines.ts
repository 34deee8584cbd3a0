import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import { PluginCallError } from '../errors.js';
import { DEFAULT_BACKOFF, RestartBackoff, type BackoffSettings, type RestartStatus } from './backoff.js';
import { BoundedLines } from './bounded-lines.js';

/** The longest protocol line (one answer) read from a plugin by default: 1 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** A line a plugin prints (stderr, its own stdout, `log` messages) is logged cut to this many bytes. */
export const LOG_LINE_LIMIT = 4096;

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

/** Limits of a plugin process; every field has a default. */
export interface ChildOptions {
  /** The longest answer line; past it the calls in flight fail and the process is restarted. */
  maxMessageBytes?: number;
  backoff?: Partial<BackoffSettings>;
  clock?: Clock;
}

/**
 * A long-lived child process that answers requests `{"id", "hook", "args"}` with
 * `{"id", "result"}` or `{"id", "error"}`, one JSON object a line; several calls may be in
 * flight and are matched by id. It is started on first use and again after it dies — after a
 * growing pause when it keeps dying before it comes up (see `RestartBackoff`); calls in flight
 * when it dies fail as `crash`. What is read from it is bounded: an answer line over
 * `maxMessageBytes` fails the calls in flight and restarts it; printed lines are logged cut to
 * `LOG_LINE_LIMIT` bytes, tagged with the session of the call they came with when that is known.
 */
export class JsonLinesChild {
  private child: ChildProcess | undefined;
  private input: Writable | undefined;
  private protocol: BoundedLines | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  private readonly maxMessageBytes: number;
  private readonly backoff: RestartBackoff;

  constructor(
    private readonly spec: ChildSpec,
    private readonly plugin: string,
    private readonly logger: Logger,
    options: ChildOptions = {},
  ) {
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.backoff = new RestartBackoff({ ...DEFAULT_BACKOFF, ...options.backoff }, options.clock);
  }

  request(
    hook: string,
    args: unknown,
    sessionId: string,
    extra: Record<string, unknown> = {},
  ): Promise<unknown> {
    if (this.closed) return Promise.reject(new PluginCallError('crash', 'plugin runtime is closed'));
    const wait = this.child ? 0 : this.backoff.waitMs();
    if (wait > 0) {
      const { quick_exits } = this.backoff.status();
      return Promise.reject(
        new PluginCallError('crash', `plugin is down (${quick_exits} quick exits); next start in ${wait} ms`),
      );
    }
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

  /** Kill the child (a hung call, an answer too long); the next request starts a new one. */
  restart(reason: string, failure: PluginCallError['failure'] = 'crash'): void {
    const child = this.child;
    if (child) this.backoff.stopped(reason);
    this.detach(new PluginCallError(failure, reason));
    child?.kill('SIGKILL');
  }

  /** True while the child has written part of an answer line and not its end. */
  midLine(): boolean {
    return (this.protocol?.unfinished ?? 0) > 0;
  }

  status(): RestartStatus {
    return this.backoff.status();
  }

  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    this.detach(new PluginCallError('crash', 'plugin runtime closed'));
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
  }

  private ensure(): Writable {
    if (this.child && this.input) return this.input;
    const stdio: 'pipe'[] = this.spec.protocolOnFd3
      ? ['pipe', 'pipe', 'pipe', 'pipe']
      : ['pipe', 'pipe', 'pipe'];
    const child = spawn(this.spec.command, this.spec.args, { cwd: this.spec.cwd, env: this.spec.env, stdio });
    this.backoff.started();
    this.child = child;
    this.input = child.stdin!;
    child.stdin!.on('error', () => undefined); // EPIPE after a crash: reported through 'exit'
    const tooLong = `an answer line over max_message_bytes (${this.maxMessageBytes})`;
    const protocol = new BoundedLines(
      this.maxMessageBytes,
      (line, dropped) => dropped === 0 && this.onProtocolLine(line),
      () => this.child === child && this.restart(`${tooLong}; plugin restarted`, 'malformed'),
    );
    this.protocol = protocol;
    this.read((this.spec.protocolOnFd3 ? child.stdio[3] : child.stdout) as Readable, protocol);
    if (this.spec.protocolOnFd3) this.logLines(child.stdout!, 'stdout');
    this.logLines(child.stderr!, 'stderr');
    child.on('error', (err) => this.onExit(child, `cannot start plugin: ${err.message}`));
    child.on('exit', (code, signal) => this.onExit(child, `plugin exited (${signal ?? code})`));
    return this.input;
  }

  private onExit(child: ChildProcess, how: string): void {
    if (this.child !== child) return; // stopped by the gateway, or already reported
    if (this.backoff.exited(how)) {
      const s = this.backoff.status();
      this.logger.warn(
        {
          plugin: this.plugin,
          restarts: s.starts - 1,
          quickExits: s.quick_exits,
          nextStartAt: s.next_start_at,
          exit: how,
        },
        'plugin process cannot stay up; next start delayed',
      );
    }
    this.detach(new PluginCallError('crash', how));
  }

  private detach(err: PluginCallError): void {
    this.child = undefined;
    this.input = undefined;
    this.protocol = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private read(stream: Readable, lines: BoundedLines): void {
    stream.on('data', (chunk: Buffer) => lines.push(chunk));
    stream.on('end', () => lines.end());
    stream.on('error', () => undefined); // the child's end is reported through 'exit'
  }

  private onProtocolLine(line: string): void {
    if (!line.trim()) return;
    let msg: {
      id?: unknown;
      result?: unknown;
      error?: unknown;
      log?: unknown;
      stream?: unknown;
      dropped?: unknown;
    };
    try {
      msg = JSON.parse(line) as typeof msg;
      // `null`, `7`, `[]` parse too but are no message.
      if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw new Error('not an object');
    } catch {
      this.logger.warn(
        { plugin: this.plugin, output: cut(line, 200).text },
        'plugin printed a line that is not JSON',
      );
      return;
    }
    const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
    if (typeof msg.log === 'string') {
      const { text, dropped } = cut(msg.log, LOG_LINE_LIMIT);
      const before = typeof msg.dropped === 'number' ? msg.dropped : 0;
      const stream = typeof msg.stream === 'string' ? cut(msg.stream, 20).text : 'log';
      this.logLine(text, dropped + before, stream, p?.sessionId);
      return;
    }
    if (!p) {
      this.logger.warn({ plugin: this.plugin }, 'plugin answered an unknown request id');
      return;
    }
    this.pending.delete(msg.id as number);
    this.backoff.answer();
    if (msg.error !== undefined)
      p.reject(new PluginCallError('exception', cut(String(msg.error), 1000).text));
    else p.resolve(msg.result);
  }

  private logLines(stream: Readable, name: string): void {
    const lines = new BoundedLines(LOG_LINE_LIMIT, (line, dropped) => {
      // Unframed output cannot be tied to a call when several are in flight.
      const only = this.pending.size === 1 ? [...this.pending.values()][0] : undefined;
      this.logLine(line, dropped, name, only?.sessionId);
    });
    this.read(stream, lines);
  }

  private logLine(text: string, dropped: number, stream: string, sessionId: string | undefined): void {
    this.logger.info({ plugin: this.plugin, sessionId, stream, ...(dropped > 0 ? { dropped } : {}) }, text);
  }
}

/** `text` cut to at most `maxBytes` bytes of UTF-8 (never inside a character), and the bytes cut off. */
function cut(text: string, maxBytes: number): { text: string; dropped: number } {
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return { text, dropped: 0 };
  let kept = Buffer.from(text).subarray(0, maxBytes).toString('utf8');
  if (kept.endsWith('\uFFFD')) kept = kept.slice(0, -1);
  return { text: kept, dropped: bytes - Buffer.byteLength(kept) };
}
