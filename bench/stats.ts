/** Small helpers shared by the benchmarks: repeated runs, medians and spread. */

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** "median (min–max)" with the spread as a percentage of the median: the machine's noise. */
export function summary(values: number[], digits = 0): string {
  const m = median(values);
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  const noise = m === 0 ? 0 : ((hi - lo) / m) * 100;
  return `${fmt(m, digits)} (${fmt(lo, digits)}–${fmt(hi, digits)}, ±${noise.toFixed(0)}%)`;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** Ops per second of `n` sequential awaited calls of `op(i)`. */
export async function opsPerSecond(n: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const t = performance.now();
  for (let i = 0; i < n; i++) await op(i);
  return n / ((performance.now() - t) / 1000);
}

export function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

/**
 * Latencies in milliseconds at full resolution (autocannon's own histogram keeps whole
 * milliseconds, too coarse for a p99 of a few ms). A growing Float64Array: no object per value.
 *
 * @example
 * const lat = new Latencies();
 * instance.on('response', (_c, status, _b, ms) => status < 300 && lat.add(ms));
 * lat.percentile(99); // e.g. 7.42
 */
export class Latencies {
  #values = new Float64Array(1 << 16);
  #n = 0;
  #sorted = true;

  add(ms: number): void {
    if (this.#n === this.#values.length) {
      const bigger = new Float64Array(this.#values.length * 2);
      bigger.set(this.#values);
      this.#values = bigger;
    }
    this.#values[this.#n++] = ms;
    this.#sorted = false;
  }

  get count(): number {
    return this.#n;
  }

  /** The p-th percentile (nearest rank), 0 when nothing was recorded. */
  percentile(p: number): number {
    if (this.#n === 0) return 0;
    const v = this.#values.subarray(0, this.#n);
    if (!this.#sorted) {
      v.sort();
      this.#sorted = true;
    }
    const rank = Math.min(this.#n, Math.max(1, Math.ceil((p / 100) * this.#n)));
    return v[rank - 1]!;
  }
}
