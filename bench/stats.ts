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
