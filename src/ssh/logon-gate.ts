import type { Socket } from 'node:net';
import type { Logger } from '../core/logger.js';

/**
 * The sockets of one process that have not logged on yet, from the moment they connect (before
 * any SSH is spoken): at most `max` of them, each for at most `graceMs`. What a client that
 * connects and sends nothing, or floods the listener, can hold is bounded.
 *
 * @example
 * ```ts
 * const gate = new LogonGate(100, 122_000, logger);
 * net.createServer((socket) => gate.admit(socket) && sshServer.injectSocket(socket));
 * ```
 */
export class LogonGate {
  private readonly waiting = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();
  /** Every socket still open, logged on or not (what a stop must not wait for forever). */
  private readonly open = new Set<Socket>();

  constructor(
    private readonly max: number,
    private readonly graceMs: number,
    private readonly logger: Logger,
  ) {}

  /** Count a new socket in, or close it at once when too many are waiting. */
  admit(socket: Socket): boolean {
    socket.on('error', () => undefined); // a reset before the SSH layer has it is routine
    if (this.waiting.size >= this.max) {
      this.logger.warn(
        { clientIp: socket.remoteAddress, waiting: this.waiting.size },
        'ssh connection refused: too many not logged on',
      );
      socket.destroy();
      return false;
    }
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    const timer = setTimeout(() => socket.destroy(), this.graceMs);
    timer.unref();
    this.waiting.set(key, { socket, timer });
    socket.once('close', () => this.release(key));
    return true;
  }

  /** The connection from this address and port logged on. */
  loggedOn(ip: string, port: number): void {
    this.release(`${ip}:${port}`);
  }

  /** Shutting down: the sockets still waiting go now. */
  closeWaiting(): void {
    for (const w of this.waiting.values()) w.socket.destroy();
  }

  /** Shutting down, past the grace: every socket left goes. */
  destroyAll(): void {
    for (const socket of this.open) socket.destroy();
  }

  private release(key: string): void {
    const w = this.waiting.get(key);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting.delete(key);
  }
}
