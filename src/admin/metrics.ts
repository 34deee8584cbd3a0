import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditEvent, AuditSink } from '../core/audit.js';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { SESSION_STATES } from '../core/session-types.js';
import type { SessionStore, StoreStats } from '../store/contract.js';

/** Counters of one plugin hook, as the plugin host keeps them (`PluginHost.stats.all()`). */
export interface HookFigures {
  plugin: string;
  hook: string;
  counters: { calls: number; failures: Record<string, number>; totalMs: number };
}

/** What the metrics read on every scrape; admin code never imports the plugin layer itself. */
export type HookStatsProvider = () => HookFigures[];

/** The process of one plugin, as the plugin host reports it (`PluginHost.stats.plugins()`). */
export interface PluginProcessFigures {
  plugin: string;
  status: { state: string; starts: number; quick_exits: number };
}
export type PluginStatusProvider = () => PluginProcessFigures[];

export interface MetricsOptions {
  /** The store the session gauges read; may also be given later with `attach`. */
  store?: SessionStore;
  clock?: Clock;
  hookStats?: HookStatsProvider;
  pluginStatus?: PluginStatusProvider;
  /** Also export Node's process metrics (CPU, memory, event loop lag). Default false. */
  processMetrics?: boolean;
  /** A close subscriber counts as stuck when its backlog has not shrunk for this long (s). Default 120. */
  stuckAfterSeconds?: number;
  /** A close subscriber counts as behind when its oldest undelivered record is this old (s). Default 60. */
  behindAfterSeconds?: number;
}

/** How one close-pipeline subscriber keeps up. */
export interface SubscriberLag {
  pending: number;
  failed: number;
  /** Age of its oldest undelivered close record (ms); 0 when it has none. */
  oldestAgeMs: number;
  /** The oldest undelivered record is older than `behindAfterSeconds`. */
  behind: boolean;
  /** Its backlog has stayed above zero without shrinking for `stuckAfterSeconds`. */
  stuck: boolean;
}

/** A sample of the store's statistics and how long the close backlog has gone without shrinking. */
export interface StoreSample {
  stats: StoreStats;
  backlog: number;
  failed: number;
  /** Since when (epoch ms) some subscriber's backlog has been above zero without shrinking; null = none. */
  backlogGrowingSince: number | null;
  /** Some subscriber is stuck (readyz fails). */
  stuck: boolean;
  /** Each subscriber on its own: one that hangs must show even while the others keep delivering. */
  subscribers: Record<string, SubscriberLag>;
  /** The names of the subscribers that are behind. */
  behind: string[];
}

const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1];

/**
 * sessiongate's Prometheus metrics and the counters behind `GET /api/v1/stats` (docs/admin.md):
 * sessions by state (from the store on each scrape), created and closed totals, policy
 * results, plugin hook calls, rule errors, request and store operation durations, and the
 * close pipeline backlog. One registry per instance (tests run several).
 *
 * @example
 * ```ts
 * const metrics = new AdminMetrics({ store, hookStats: () => host.stats.all() });
 * const audit = metrics.counting(new AuditLog());       // counts starts and policy results
 * startGateway(config, { audit, observeRequest: metrics.observeRequest });
 * ```
 */
export class AdminMetrics {
  readonly registry = new Registry();
  readonly startedAt: number;
  /** Counts since this process started. */
  readonly created = new Map<string, number>();
  readonly closed = new Map<string, number>();
  readonly policyResults = new Map<string, number>();
  private readonly clock: Clock;
  private readonly stuckAfterMs: number;
  private readonly behindAfterMs: number;
  private readonly createdTotal: Counter<'origin'>;
  private readonly closedTotal: Counter<'reason'>;
  private readonly policyTotal: Counter<'result'>;
  private readonly ruleErrors: Counter<'rule'>;
  private readonly throttledTotal: Counter<'scope'>;
  private readonly clientAborted: Counter<'route'>;
  private readonly requests: Histogram<'route' | 'status'>;
  private readonly storeOps: Histogram<'op'>;
  private sample: { at: number; value: Promise<StoreSample>; pending: boolean } | undefined;
  private store: SessionStore | undefined;
  private hookStats: HookStatsProvider | undefined;
  private pluginStatus: PluginStatusProvider | undefined;
  /** By subscriber: its backlog at the last sample, and since when it has not shrunk. */
  private readonly backlogWatch = new Map<string, { total: number; since: number }>();

  constructor(o: MetricsOptions = {}) {
    this.clock = o.clock ?? systemClock;
    this.startedAt = this.clock.now();
    this.stuckAfterMs = (o.stuckAfterSeconds ?? 120) * 1000;
    this.behindAfterMs = (o.behindAfterSeconds ?? 60) * 1000;
    this.store = o.store;
    this.hookStats = o.hookStats;
    this.pluginStatus = o.pluginStatus;
    const registers = [this.registry];
    if (o.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'sessiongate_' });

    // Gauges read from one store sample per scrape.
    const sampleStore = (maxAgeMs: number) => this.storeSample(maxAgeMs);
    storeGauges(registers, sampleStore, this.stuckAfterMs);
    this.subscriberLagMetrics(registers, sampleStore);
    const events = eventCounters(registers);
    this.createdTotal = events.createdTotal;
    this.closedTotal = events.closedTotal;
    this.policyTotal = events.policyTotal;
    this.throttledTotal = events.throttledTotal;
    this.clientAborted = events.clientAborted;
    this.ruleErrors = events.ruleErrors;
    hookCounters(registers, () => this.hookStats?.() ?? []);
    this.pluginProcessMetrics(registers);
    const durations = durationHistograms(registers);
    this.requests = durations.requests;
    this.storeOps = durations.storeOps;
  }

  /** How far behind each close subscriber is, so that one that hangs shows on its own. */
  private subscriberLagMetrics(
    registers: Registry[],
    sampleStore: (maxAgeMs: number) => Promise<StoreSample>,
  ): void {
    new Gauge({
      name: 'sessiongate_close_oldest_age_seconds',
      help: 'Age of the oldest close record a subscriber has not delivered yet (0 when none), by subscriber.',
      labelNames: ['subscriber'],
      registers,
      async collect() {
        const { subscribers } = await sampleStore(1000);
        this.reset();
        for (const [subscriber, lag] of Object.entries(subscribers))
          this.set({ subscriber }, lag.oldestAgeMs / 1000);
      },
    });
    new Gauge({
      name: 'sessiongate_close_subscriber_behind',
      help: `1 when a subscriber's oldest undelivered close record is older than ${this.behindAfterMs / 1000} s, by subscriber.`,
      labelNames: ['subscriber'],
      registers,
      async collect() {
        const { subscribers } = await sampleStore(1000);
        this.reset();
        for (const [subscriber, lag] of Object.entries(subscribers))
          this.set({ subscriber }, lag.behind ? 1 : 0);
      },
    });
  }

  /** Starts of plugin processes, and which plugins are down (exiting before they come up). */
  private pluginProcessMetrics(registers: Registry[]): void {
    const processes = () => this.pluginStatus?.() ?? [];
    new Counter({
      name: 'sessiongate_plugin_process_starts_total',
      help: 'Processes started for a process or sps-python plugin (the first included), by plugin.',
      labelNames: ['plugin'],
      registers,
      collect() {
        this.reset();
        for (const p of processes()) this.inc({ plugin: p.plugin }, p.status.starts);
      },
    });
    new Gauge({
      name: 'sessiongate_plugin_down',
      help: 'Whether a plugin process keeps exiting before it comes up and its next start is held back (1) or not (0).',
      labelNames: ['plugin'],
      registers,
      collect() {
        this.reset();
        for (const p of processes()) this.set({ plugin: p.plugin }, p.status.state === 'down' ? 1 : 0);
      },
    });
  }

  /** Give the store (and the plugin host's figures) once the gateway has opened them. */
  attach(store: SessionStore, hookStats?: HookStatsProvider, pluginStatus?: PluginStatusProvider): void {
    this.store = store;
    if (hookStats) this.hookStats = hookStats;
    if (pluginStatus) this.pluginStatus = pluginStatus;
  }

  /** The gateway calls this when a request is done; status 499: its client went away first. */
  readonly observeRequest = (route: string, status: number, seconds: number): void => {
    if (status === 499) return void this.clientAborted.inc({ route });
    this.requests.observe({ route, status: String(status) }, seconds);
  };

  /** The timing decorator of the store calls this after each operation. */
  readonly observeStore = (op: string, seconds: number): void => {
    this.storeOps.observe({ op }, seconds);
  };

  /** Placeholder until the rules layer reports its errors. */
  readonly ruleError = (rule: string): void => {
    this.ruleErrors.inc({ rule });
  };

  sessionCreated(origin: 'gateway' | 'admin_api'): void {
    bump(this.created, origin);
    this.createdTotal.inc({ origin });
  }

  sessionClosed(reason: string): void {
    bump(this.closed, reason);
    this.closedTotal.inc({ reason });
  }

  policyResult(result: string): void {
    bump(this.policyResults, result);
    this.policyTotal.inc({ result });
  }

  /** An audit sink that also counts what passes through it (session starts, policy results, throttled logons). */
  counting(sink: AuditSink): AuditSink {
    return {
      write: (event: AuditEvent) => {
        if (event.event === 'session_start' && event.origin === undefined) this.sessionCreated('gateway');
        if (event.event === 'policy_result') this.policyResult(String(event.result ?? 'unknown'));
        if (event.event === 'logon_throttled') this.throttledTotal.inc({ scope: String(event.scope) });
        sink.write(event);
      },
    };
  }

  /** The Prometheus text exposition. */
  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * The store's statistics — callers share a read in flight, and accept one up to `maxAgeMs`
   * old (a scrape reads several gauges) — and the stuck check of the close pipeline: stuck when the backlog has been
   * above zero without shrinking for `stuckAfterSeconds`.
   */
  storeSample(maxAgeMs = 0): Promise<StoreSample> {
    const now = this.clock.now();
    if (this.sample && (this.sample.pending || now - this.sample.at < maxAgeMs)) return this.sample.value;
    if (!this.store) return Promise.reject(new Error('no store attached to the metrics'));
    const value = this.store.stats().then((stats) => this.lagOf(stats, this.clock.now()));
    const entry = { at: now, value, pending: true };
    this.sample = entry;
    value.then(
      () => void (entry.pending = false),
      () => {
        if (this.sample === entry) this.sample = undefined;
      },
    );
    return value;
  }

  /** Per subscriber: the backlog watch (stuck) and the age of the oldest record (behind). */
  private lagOf(stats: StoreStats, at: number): StoreSample {
    const subscribers: Record<string, SubscriberLag> = {};
    let growingSince: number | null = null;
    const names = new Set([...Object.keys(stats.outboxPending), ...Object.keys(stats.outboxFailed)]);
    for (const name of this.backlogWatch.keys()) if (!names.has(name)) this.backlogWatch.delete(name);
    for (const name of names) {
      const pending = stats.outboxPending[name] ?? 0;
      const watch = this.backlogWatch.get(name);
      if (pending === 0) this.backlogWatch.delete(name);
      else if (!watch || pending < watch.total) this.backlogWatch.set(name, { total: pending, since: at });
      else watch.total = pending;
      const since = this.backlogWatch.get(name)?.since;
      if (since !== undefined && (growingSince === null || since < growingSince)) growingSince = since;
      const oldest = stats.outboxOldest[name];
      const oldestAgeMs = pending > 0 && oldest !== undefined ? Math.max(0, at - oldest) : 0;
      subscribers[name] = {
        pending,
        failed: stats.outboxFailed[name] ?? 0,
        oldestAgeMs,
        behind: oldestAgeMs >= this.behindAfterMs,
        stuck: since !== undefined && at - since >= this.stuckAfterMs,
      };
    }
    const lags = Object.entries(subscribers);
    return {
      stats,
      backlog: sum(stats.outboxPending),
      failed: sum(stats.outboxFailed),
      backlogGrowingSince: growingSince,
      stuck: lags.some(([, lag]) => lag.stuck),
      subscribers,
      behind: lags.filter(([, lag]) => lag.behind).map(([name]) => name),
    };
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function sum(counts: Record<string, number>): number {
  let n = 0;
  for (const v of Object.values(counts)) n += v;
  return n;
}

/** The close pipeline and session gauges, read from one store sample per scrape. */
function storeGauges(
  registers: Registry[],
  sampleStore: (maxAgeMs: number) => Promise<StoreSample>,
  stuckAfterMs: number,
): void {
  new Gauge({
    name: 'sessiongate_sessions_active',
    help: 'Live sessions in the store, by state (all processes sharing the store).',
    labelNames: ['state'],
    registers,
    async collect() {
      const { stats } = await sampleStore(1000);
      for (const state of SESSION_STATES) this.set({ state }, stats.byState[state] ?? 0);
    },
  });
  new Gauge({
    name: 'sessiongate_close_backlog',
    help: 'Close records not yet delivered, by close-pipeline subscriber.',
    labelNames: ['subscriber'],
    registers,
    async collect() {
      const { stats } = await sampleStore(1000);
      this.reset();
      for (const [subscriber, n] of Object.entries(stats.outboxPending)) this.set({ subscriber }, n);
    },
  });
  new Gauge({
    name: 'sessiongate_close_failed',
    help: 'Close records a subscriber gave up on after its retries, by subscriber.',
    labelNames: ['subscriber'],
    registers,
    async collect() {
      const { stats } = await sampleStore(1000);
      this.reset();
      for (const [subscriber, n] of Object.entries(stats.outboxFailed)) this.set({ subscriber }, n);
    },
  });
  new Gauge({
    name: 'sessiongate_close_pipeline_stuck',
    help: `1 when a subscriber's close backlog has not shrunk for ${stuckAfterMs / 1000} s (readyz fails then).`,
    registers,
    async collect() {
      this.set((await sampleStore(1000)).stuck ? 1 : 0);
    },
  });
}

/** The counters of what happens in this process (sessions, policies, throttle, rules). */
function eventCounters(registers: Registry[]) {
  return {
    createdTotal: new Counter({
      name: 'sessiongate_sessions_created_total',
      help: 'Sessions started by this process, by origin (gateway or admin_api).',
      labelNames: ['origin'],
      registers,
    }),
    closedTotal: new Counter({
      name: 'sessiongate_sessions_closed_total',
      help: 'Sessions closed, by reason (counted by the audit subscriber of this process).',
      labelNames: ['reason'],
      registers,
    }),
    policyTotal: new Counter({
      name: 'sessiongate_policy_results_total',
      help: 'Access policies that ended, by result (allowed, access_denied, redirect).',
      labelNames: ['result'],
      registers,
    }),
    throttledTotal: new Counter({
      name: 'sessiongate_logon_throttled_total',
      help: 'Logons refused by the logon throttle (429), by the counter over its limit (user_address, user, address).',
      labelNames: ['scope'],
      registers,
    }),
    clientAborted: new Counter({
      name: 'sessiongate_client_aborted_total',
      help: 'Requests whose client went away (closed or reset the connection) before the answer was complete, by route.',
      labelNames: ['route'],
      registers,
    }),
    ruleErrors: new Counter({
      name: 'sessiongate_rule_errors_total',
      help: 'Errors thrown by event rules, by rule.',
      labelNames: ['rule'],
      registers,
    }),
  };
}

/** Plugin hook calls, time and failures, read from the plugin host's figures per scrape. */
function hookCounters(registers: Registry[], hooks: HookStatsProvider): void {
  new Counter({
    name: 'sessiongate_plugin_hook_calls_total',
    help: 'Plugin hook calls, by plugin and hook.',
    labelNames: ['plugin', 'hook'],
    registers,
    collect() {
      this.reset();
      for (const h of hooks()) this.inc({ plugin: h.plugin, hook: h.hook }, h.counters.calls);
    },
  });
  new Counter({
    name: 'sessiongate_plugin_hook_duration_seconds_total',
    help: 'Time spent in plugin hook calls, by plugin and hook (divide by the calls for the mean).',
    labelNames: ['plugin', 'hook'],
    registers,
    collect() {
      this.reset();
      for (const h of hooks()) this.inc({ plugin: h.plugin, hook: h.hook }, h.counters.totalMs / 1000);
    },
  });
  new Counter({
    name: 'sessiongate_plugin_hook_failures_total',
    help: 'Failed plugin hook calls, by plugin, hook and failure (timeout, error, invalid_result, ...).',
    labelNames: ['plugin', 'hook', 'failure'],
    registers,
    collect() {
      this.reset();
      for (const h of hooks())
        for (const [failure, n] of Object.entries(h.counters.failures))
          this.inc({ plugin: h.plugin, hook: h.hook, failure }, n);
    },
  });
}

/** Gateway request and store operation durations. */
function durationHistograms(registers: Registry[]) {
  return {
    requests: new Histogram({
      name: 'sessiongate_http_request_duration_seconds',
      help: 'Gateway requests from arrival to the end of the answer, by route and status.',
      labelNames: ['route', 'status'],
      buckets: REQUEST_BUCKETS,
      registers,
    }),
    storeOps: new Histogram({
      name: 'sessiongate_store_operation_duration_seconds',
      help: 'Session store operations, by operation.',
      labelNames: ['op'],
      buckets: STORE_BUCKETS,
      registers,
    }),
  };
}
