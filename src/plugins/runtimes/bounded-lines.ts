/**
 * Splits a byte stream into lines (LF, a CR before it dropped) while holding at most `max`
 * bytes of a line: the rest of a longer line is counted, not kept, so a plugin that writes a
 * 50 MB line, or never ends its line, costs the gateway `max` bytes. `onLine` gets the kept
 * bytes as text and how many were dropped; `onOverflow` is told once per line, at the moment
 * it passes `max` — before its end, which may never come.
 *
 * @example
 * ```ts
 * const lines = new BoundedLines(4096, (text, dropped) => log(text, dropped));
 * child.stderr.on('data', (chunk: Buffer) => lines.push(chunk));
 * child.stderr.on('end', () => lines.end());
 * ```
 */
export class BoundedLines {
  private parts: Buffer[] = [];
  private size = 0;
  private dropped = 0;

  constructor(
    private readonly max: number,
    private readonly onLine: (text: string, dropped: number) => void,
    private readonly onOverflow?: () => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    while (start <= chunk.length) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline;
      this.keep(chunk.subarray(start, end));
      if (newline === -1) return;
      this.emit();
      start = newline + 1;
    }
  }

  /** The stream ended: an unfinished line counts as a line. */
  end(): void {
    if (this.size > 0 || this.dropped > 0) this.emit();
  }

  /** Bytes of an unfinished line seen so far (kept or dropped). */
  get unfinished(): number {
    return this.size + this.dropped;
  }

  private keep(piece: Buffer): void {
    if (piece.length === 0) return;
    const room = this.max - this.size;
    if (room > 0) {
      // A copy: a slice would pin the whole chunk it came from.
      const kept = Buffer.from(piece.subarray(0, room));
      this.parts.push(kept);
      this.size += kept.length;
    }
    const over = piece.length - Math.max(room, 0);
    if (over > 0) {
      if (this.dropped === 0) this.onOverflow?.();
      this.dropped += over;
    }
  }

  private emit(): void {
    let text = Buffer.concat(this.parts, this.size).toString('utf8');
    if (this.dropped === 0 && text.endsWith('\r')) text = text.slice(0, -1);
    const dropped = this.dropped;
    this.parts = [];
    this.size = 0;
    this.dropped = 0;
    this.onLine(text, dropped);
  }
}
