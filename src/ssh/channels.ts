import type { Client, ClientChannel, PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { CastRecorder } from './recording.js';

/** What a channel bridge needs from its connection. */
export interface ChannelContext {
  sessionId: string;
  /** The logged-on target, or the message that says why there is none. */
  target(): Promise<Client | string>;
  envAllowed(name: string): boolean;
  /** Recording of shell and exec channels, when the route records. */
  recording?: { dir: string; input: boolean } | undefined;
  clock: Clock;
  logger: Logger;
  /** Bytes that crossed, each way (also activity for the idle timeout). */
  counted(direction: 'to_target' | 'to_client', bytes: number): void;
  /** The number of the connection's next recorded channel (1, 2, ...): the recording's file name. */
  nextChannel(): number;
  /** A client channel that is open (an ending session writes its message there). */
  track(ch: ServerChannel): void;
  /** A channel was opened on the target (audit). */
  opened(kind: 'shell' | 'exec' | 'subsystem', detail: string | undefined): void;
}

type Start = { kind: 'shell' } | { kind: 'exec'; command: string } | { kind: 'subsystem'; name: string };

/**
 * One session channel of the client, carried to the target: pty and env requests are kept
 * until the shell, exec or subsystem request opens the matching channel on the target; then
 * data flows both ways (stderr too), window changes and signals follow, and the target's
 * exit status or signal comes back before the channel closes. X11 and agent forwarding are
 * refused.
 *
 * @example
 * ```ts
 * client.on('session', (accept) => bridgeSession(accept(), context));
 * ```
 */
export function bridgeSession(session: Session, ctx: ChannelContext): void {
  let pty: PseudoTtyInfo | undefined;
  const env: Record<string, string> = {};
  let live: ClientChannel | undefined;
  let started = false;
  session.on('pty', (accept, _reject, info) => {
    pty = info;
    accept?.();
  });
  session.on('env', (accept, reject, info) => {
    if (!ctx.envAllowed(info.key)) return reject?.();
    env[info.key] = info.val;
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (pty) Object.assign(pty, { cols: info.cols, rows: info.rows, width: info.width, height: info.height });
    live?.setWindow(info.rows, info.cols, info.height, info.width);
    recorderOf(live)?.resize(info.cols, info.rows);
    accept?.();
  });
  session.on('signal', (accept, _reject, info) => {
    live?.signal(info.name);
    accept?.();
  });
  session.on('x11', (_accept, reject) => reject?.());
  session.on('auth-agent', (_accept, reject) => reject?.());
  const begin = (start: Start, accept: () => ServerChannel, reject: () => void): void => {
    if (started) return reject();
    started = true;
    const asked = pty ? { ...pty } : undefined;
    void open(start, accept, { pty: asked, env }, ctx).then((ch) => {
      live = ch;
      // A window change while the target's channel was opening: the target gets it now.
      if (ch && pty && asked && (pty.cols !== asked.cols || pty.rows !== asked.rows)) {
        ch.setWindow(pty.rows, pty.cols, pty.height, pty.width);
      }
    });
  };
  session.on('shell', (accept, reject) => begin({ kind: 'shell' }, accept, reject));
  session.on('exec', (accept, reject, info) =>
    begin({ kind: 'exec', command: info.command }, accept, reject),
  );
  session.on('subsystem', (accept, reject, info) =>
    begin({ kind: 'subsystem', name: info.name }, accept, reject),
  );
}

const recorders = new WeakMap<ClientChannel, CastRecorder>();
const recorderOf = (ch: ClientChannel | undefined) => (ch ? recorders.get(ch) : undefined);

/**
 * Open the target's channel for the client's request. The client's channel is accepted at
 * once: a client may send its EOF right after the request (`ssh host cmd < /dev/null`), and a
 * request not yet answered then can no longer be. What it sends meanwhile waits in the stream.
 * A failure is told on the client's stderr.
 */
async function open(
  start: Start,
  accept: () => ServerChannel,
  asked: { pty: PseudoTtyInfo | undefined; env: Record<string, string> },
  ctx: ChannelContext,
): Promise<ClientChannel | undefined> {
  const ch = accept() as ServerChannel | undefined;
  if (!ch) return undefined;
  ctx.track(ch);
  const target = await ctx.target();
  const fail = (message: string, status: number): undefined => {
    ch.stderr.write(`sessiongate: ${message}\r\n`);
    ch.exit(status);
    ch.end();
    return undefined;
  };
  if (typeof target === 'string') return fail(target, 255);
  const window = asked.pty
    ? {
        term: asked.pty.term,
        cols: asked.pty.cols,
        rows: asked.pty.rows,
        width: asked.pty.width,
        height: asked.pty.height,
      }
    : false;
  const opened = await new Promise<ClientChannel | Error>((done) => {
    const cb = (err: Error | undefined, c: ClientChannel) => done(err ?? c);
    if (start.kind === 'shell') target.shell(window, { env: asked.env }, cb);
    else if (start.kind === 'exec') target.exec(start.command, { env: asked.env, pty: window || false }, cb);
    else target.subsys(start.name, cb);
  });
  if (opened instanceof Error) {
    ctx.logger.info({ sessionId: ctx.sessionId, error: opened.message }, 'the target refused a channel');
    return fail(`the target refused the ${start.kind} request`, 1);
  }
  ctx.opened(
    start.kind,
    start.kind === 'exec' ? start.command : start.kind === 'subsystem' ? start.name : undefined,
  );
  const recorder =
    ctx.recording && start.kind !== 'subsystem'
      ? CastRecorder.open({
          dir: ctx.recording.dir,
          sessionId: ctx.sessionId,
          channel: ctx.nextChannel(),
          // A client without a terminal of its own (ssh -tt < file) asks for a 0x0 pty.
          width: asked.pty?.cols || 80,
          height: asked.pty?.rows || 24,
          ...(start.kind === 'exec' ? { command: start.command } : {}),
          ...(asked.pty?.term ? { term: asked.pty.term } : {}),
          input: ctx.recording.input,
          clock: ctx.clock,
          logger: ctx.logger,
        })
      : undefined;
  if (recorder) recorders.set(opened, recorder);
  pipeBoth(ch, opened, ctx, recorder);
  return opened;
}

/** Data both ways with backpressure; the target's exit status goes back before the close. */
function pipeBoth(
  ch: ServerChannel,
  target: ClientChannel,
  ctx: ChannelContext,
  recorder: CastRecorder | undefined,
): void {
  let exit: [number | string, boolean?, string?] | undefined;
  target.on('data', (d: Buffer) => {
    ctx.counted('to_client', d.length);
    recorder?.output(d);
  });
  target.stderr.on('data', (d: Buffer) => {
    ctx.counted('to_client', d.length);
    recorder?.output(d);
  });
  ch.on('data', (d: Buffer) => {
    ctx.counted('to_target', d.length);
    recorder?.input(d);
  });
  target.pipe(ch, { end: false });
  target.stderr.pipe(ch.stderr, { end: false });
  ch.pipe(target);
  target.on('exit', (code: number | null, signal?: string, dumped?: boolean, description?: string) => {
    exit =
      code !== null && code !== undefined ? [code] : [signal ?? 'KILL', dumped ?? false, description ?? ''];
  });
  target.on('close', () => {
    if (exit) ch.exit(...(exit as [number]));
    ch.end();
    void recorder?.close();
  });
  ch.on('close', () => {
    target.close();
    void recorder?.close();
  });
  ch.on('error', () => target.close());
  target.on('error', () => ch.close());
}
