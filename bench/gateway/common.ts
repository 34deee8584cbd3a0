/** What the driver (bench/gateway.bench.ts) and its child processes (child.ts) agree on. */

/** Distinct sessions per server; the load cycles through them round-robin. */
export const POOL = Number(process.env.BENCH_SESSIONS ?? 1000);
/** The upstream's whole answer (12 bytes). */
export const BODY = 'hello world\n';
/** Every session's (and request's) client address: inside the subnet rule's 192.168.255.0/24. */
export const CLIENT_IP = '192.168.255.7';

export interface SessiongateArgs {
  /** Store URL: memory, sqlite:PATH, redis://HOST:PORT?prefix=P */
  store: string;
  upstream: string;
  /** Absolute paths of global rule files. */
  rules: string[];
  /** A private temporary directory (config, key ring, sqlite file). */
  dir: string;
  /**
   * OpenID Connect sessions: the child starts an oidc-provider in its own process and signs the
   * pool in through it (authorization code flow), so any per-request call to the provider
   * would show in the server's CPU time.
   */
  oidc?: boolean;
}

export interface ExpressArgs {
  redis: string;
  upstream: string;
}

export type ChildMessage = { type: 'cpu' } | { type: 'lastAccess'; cookie: string };
/** Garbage collections since the child started: counts by kind and their total duration. */
export interface GcTotals {
  minor: number;
  major: number;
  ms: number;
}
export type ChildReply =
  { type: 'cpu'; us: number; gc: GcTotals; peakRssMb: number } | { type: 'lastAccess'; at: number | null };
