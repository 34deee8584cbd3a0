import type { Logger } from '../core/logger.js';
import type { RestartStatus } from './runtimes/backoff.js';
import type { HookArgs, HookName, HookResult, PluginKind } from './types.js';

/** Facts about one call that a runtime may use for logging. */
export interface CallContext {
  plugin: string;
  sessionId: string;
  /** The call is abandoned at this time (epoch ms, wall clock). */
  deadline: number;
  logger: Logger;
}

/**
 * One way of running plugin code (in-process module, child process over JSON lines, SPS-style
 * Python). A runtime only moves calls and results; the host owns cookies, deadlines and
 * verdict defaults.
 */
export interface PluginRuntime {
  readonly kind: PluginKind;
  /** Run one hook with SPS-named arguments; rejects on any failure of the plugin. */
  call(hook: HookName, args: HookArgs, ctx: CallContext): Promise<HookResult>;
  /** Called after a call timed out, so the runtime can drop or restart what hangs. */
  abandon?(hook: HookName, ctx: CallContext): void;
  /** How a runtime with a process of its own is doing (starts, quick exits, backoff). */
  status?(): RestartStatus;
  close(): Promise<void>;
}
