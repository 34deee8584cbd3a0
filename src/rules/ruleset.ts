import { resolve } from 'node:path';
import { SessionGateError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { importUserModule } from '../core/user-modules.js';
import { Watchdog } from '../core/watchdog.js';
import type { RuleContext, RuleHandler, Rules } from './define.js';
import { isRuleEvent, RULE_EVENTS, type RuleEvent } from './events.js';

/** A rule file that failed to load: the message names the file (and line where known). */
export class RuleLoadError extends SessionGateError {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super('SG_ERR_RULE_LOAD', `${file}: ${message}`);
    this.name = 'RuleLoadError';
  }
}

/** A rule that threw or ran past its deadline; the gateway answers 500 and carries on. */
export class RuleFailure extends SessionGateError {
  constructor(
    readonly rule: string,
    readonly event: RuleEvent,
    readonly reason: 'exception' | 'timeout',
    message: string,
  ) {
    super('SG_ERR_RULE_FAILED', message);
    this.name = 'RuleFailure';
  }
}

interface ChainEntry {
  file: string;
  handler: RuleHandler;
  /** The failure of a handler past its deadline (made once, not per run). */
  late: () => RuleFailure;
}

export interface LoadedRule {
  file: string;
  rules: Rules;
}

/**
 * Import rule files once (TypeScript too, without a build step: importUserModule) and check
 * them: the default export must map known event names to functions.
 */
export async function loadRuleFiles(files: string[], baseDir: string): Promise<LoadedRule[]> {
  const out: LoadedRule[] = [];
  for (const file of files) {
    let mod: { default?: unknown };
    try {
      mod = (await importUserModule(resolve(baseDir, file))) as { default?: unknown };
    } catch (err) {
      throw new RuleLoadError(file, (err as Error).message);
    }
    const rules = mod.default;
    if (!rules || typeof rules !== 'object') {
      throw new RuleLoadError(file, 'the default export must be defineRules({ EVENT: handler, ... })');
    }
    for (const [name, handler] of Object.entries(rules)) {
      if (!isRuleEvent(name)) {
        throw new RuleLoadError(file, `unknown event ${name}; events are ${RULE_EVENTS.join(', ')}`);
      }
      if (typeof handler !== 'function') throw new RuleLoadError(file, `${name} must be a function`);
    }
    out.push({ file, rules: rules as Rules });
  }
  return out;
}

/**
 * The handlers of one event chain, in configuration order (global rules, then the route's).
 * Each runs with a deadline; 'stop' ends the chain; failures are counted and re-thrown as
 * RuleFailure for the caller to answer with a 500.
 */
export class RuleSet {
  readonly errors = new Map<string, number>();
  private readonly chains = new Map<RuleEvent, ChainEntry[]>();
  private readonly watchdog: Watchdog;

  constructor(
    rules: LoadedRule[],
    private readonly timeoutMs: number,
    private readonly logger: Logger,
    /** Told of every failed handler (the admin metrics count them by rule). */
    private readonly onError?: (rule: string, event: RuleEvent) => void,
  ) {
    // A tenth of the deadline, within 10..100 ms: a late rule fails at most 10% late.
    this.watchdog = new Watchdog(Math.min(100, Math.max(10, Math.floor(timeoutMs / 10))));
    for (const { file, rules: r } of rules) {
      for (const event of RULE_EVENTS) {
        const handler = r[event];
        if (!handler) continue;
        let chain = this.chains.get(event);
        if (!chain) this.chains.set(event, (chain = []));
        const late = () => new RuleFailure(file, event, 'timeout', `ran past ${timeoutMs} ms`);
        chain.push({ file, handler, late });
      }
    }
  }

  has(event: RuleEvent): boolean {
    return this.chains.has(event);
  }

  private count(file: string, event: RuleEvent): void {
    const key = `${file}\0${event}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
    this.onError?.(file, event);
  }

  /** Run the chain; `make` builds the context for each rule. Resolves when done or stopped. */
  async run(event: RuleEvent, make: (rule: string) => RuleContext, sessionId?: string): Promise<void> {
    for (const { file, handler, late } of this.chains.get(event) ?? []) {
      try {
        let result = handler(make(file));
        // Most handlers finish without waiting on anything: no deadline needed for those.
        if (result instanceof Promise) {
          result = await this.watchdog.within(result, this.timeoutMs, late);
        }
        if (result === 'stop') return;
      } catch (err) {
        const failure =
          err instanceof RuleFailure
            ? err
            : new RuleFailure(file, event, 'exception', err instanceof Error ? err.message : String(err));
        this.count(file, event);
        this.logger.error(
          { rule: file, event, sessionId, reason: failure.reason, error: failure.message },
          'rule failed',
        );
        throw failure;
      }
    }
  }
}
