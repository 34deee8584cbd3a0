import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Replace a file atomically: write a temporary file in the same folder (mode 0600), flush it
 * to disk, rename it over the target. A reader sees the old or the new file, never a mix, and
 * a crash leaves the old one in place.
 */
export function writeFileAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or never written
    }
    throw err;
  }
}

/**
 * A file read and parsed again only when it changed on disk (size, mtime or inode), so
 * plugins see edits made by the CLI without a restart and without parsing on every call.
 */
export class WatchedFile<T> {
  private cached: { stamp: string; value: T } | undefined;

  constructor(
    readonly path: string,
    private readonly parse: (text: string) => T,
    private readonly missing: () => T,
  ) {}

  async read(): Promise<T> {
    let stamp: string;
    try {
      const s = statSync(this.path);
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return this.missing();
      throw err;
    }
    if (this.cached?.stamp === stamp) return this.cached.value;
    const value = this.parse(await readFile(this.path, 'utf8'));
    this.cached = { stamp, value };
    return value;
  }
}
