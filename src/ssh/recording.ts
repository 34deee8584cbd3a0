import { createWriteStream, mkdirSync, readdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';

/** What a recording of one session channel needs to know. */
export interface CastOptions {
  dir: string;
  /** Part of the file name: letters, digits, `_` and `-` only. */
  sessionId: string;
  channel: number;
  width: number;
  height: number;
  /** The exec command (absent for a shell). */
  command?: string;
  title?: string;
  /** The client's TERM from its pty request. */
  term?: string;
  /** Record what the user types too (passwords typed at prompts end up in the file). */
  input: boolean;
  clock: Pick<Clock, 'now'>;
  /** Told once when writing fails and the recording stops. */
  logger?: Logger;
}

const SAFE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * Records one SSH session channel as an asciicast v2 file (`asciinema play` plays it):
 * `<dir>/<sessionId>-<channel>.cast`, folder 0700, file 0600. Never throws into the SSH data
 * path: the first file-system error is logged and the recording stops.
 *
 * @example
 * ```ts
 * const cast = CastRecorder.open({ dir, sessionId, channel: 0, width: 80, height: 24,
 *   term: 'xterm-256color', input: false, clock: systemClock, logger });
 * stream.on('data', (d: Buffer) => cast.output(d));
 * stream.on('close', () => void cast.close());
 * ```
 */
export class CastRecorder {
  readonly file: string;
  #bytes = 0;
  #stream: WriteStream | undefined;
  #failed = false;
  #closed: Promise<void> | undefined;
  readonly #started: number;
  #last = 0;
  readonly #out = new StringDecoder('utf8');
  readonly #in = new StringDecoder('utf8');

  private constructor(
    file: string,
    private readonly options: CastOptions,
  ) {
    this.file = file;
    this.#started = options.clock.now();
  }

  /**
   * Creates the file and writes the header. A session id that could leave `dir` is a
   * programming error (TypeError); a file-system error is only logged.
   */
  static open(options: CastOptions): CastRecorder {
    if (!SAFE_ID.test(options.sessionId))
      throw new TypeError('CastRecorder: unsafe session id for a file name');
    if (!Number.isInteger(options.channel) || options.channel < 0) {
      throw new TypeError('CastRecorder: channel must be a whole number');
    }
    const recorder = new CastRecorder(
      join(options.dir, `${options.sessionId}-${options.channel}.cast`),
      options,
    );
    recorder.#start();
    return recorder;
  }

  /** Bytes handed to the file so far (header included). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Data the server sent to the client (stdout and stderr). */
  output(data: Buffer): void {
    this.#event('o', this.#out.write(data));
  }

  /** Data the client typed; dropped unless the recorder was opened with `input: true`. */
  input(data: Buffer): void {
    if (this.options.input) this.#event('i', this.#in.write(data));
  }

  /** The client's window changed. */
  resize(cols: number, rows: number): void {
    this.#event('r', `${cols}x${rows}`);
  }

  /** Flushes half-decoded characters and closes the file; resolves even after an error. */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#event('o', this.#out.end());
    if (this.options.input) this.#event('i', this.#in.end());
    const stream = this.#stream;
    this.#stream = undefined;
    this.#closed = new Promise<void>((resolve) => {
      if (!stream || stream.destroyed) return resolve();
      stream.once('close', () => resolve());
      stream.end();
    });
    return this.#closed;
  }

  #start(): void {
    const o = this.options;
    try {
      mkdirSync(o.dir, { recursive: true, mode: 0o700 });
      // `wx`: a recording is evidence; never overwrite one.
      const stream = createWriteStream(this.file, { flags: 'wx', mode: 0o600 });
      stream.on('error', (err) => this.#fail(err));
      this.#stream = stream;
    } catch (err) {
      this.#fail(err);
      return;
    }
    const header: Record<string, unknown> = {
      version: 2,
      width: o.width,
      height: o.height,
      timestamp: Math.floor(this.#started / 1000),
    };
    if (o.command !== undefined) header.command = o.command;
    if (o.title !== undefined) header.title = o.title;
    if (o.term !== undefined) header.env = { TERM: o.term };
    this.#write(JSON.stringify(header));
  }

  #event(code: 'o' | 'i' | 'r', data: string): void {
    if (data === '' || !this.#stream) return;
    // Never backwards, even when the injected clock is (asciinema expects sorted times).
    const seconds = Math.max(this.#last, (this.options.clock.now() - this.#started) / 1000);
    this.#last = seconds;
    this.#write(JSON.stringify([Number(seconds.toFixed(6)), code, data]));
  }

  #write(line: string): void {
    const stream = this.#stream;
    if (!stream) return;
    const text = `${line}\n`;
    this.#bytes += Buffer.byteLength(text);
    try {
      stream.write(text);
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    const stream = this.#stream;
    this.#stream = undefined;
    stream?.destroy();
    if (this.#failed) return;
    this.#failed = true;
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    this.options.logger?.error(
      { file: this.file, error: code ?? (err instanceof Error ? err.message : String(err)) },
      'session recording stopped: the file cannot be written',
    );
  }
}

/**
 * The recordings of one session, one per channel, channel order; `[]` when there are none.
 *
 * @example
 * ```ts
 * listRecordings('/var/lib/sessiongate/casts', session.id); // ['/var/…/<id>-0.cast', …]
 * ```
 */
export function listRecordings(dir: string, sessionId: string): string[] {
  if (!SAFE_ID.test(sessionId)) return [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const prefix = `${sessionId}-`;
  return names
    .map((name) => ({ name, channel: /^(\d+)\.cast$/.exec(name.slice(prefix.length))?.[1] }))
    .filter((e) => e.name.startsWith(prefix) && e.channel !== undefined)
    .sort((a, b) => Number(a.channel) - Number(b.channel))
    .map((e) => join(dir, e.name));
}
