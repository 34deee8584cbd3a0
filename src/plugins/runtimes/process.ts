import { SessionGateError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { PluginCallError } from '../errors.js';
import type { CallContext, PluginRuntime } from '../runtime.js';
import type { HookArgs, HookName, HookResult, PluginKind } from '../types.js';
import type { RestartStatus } from './backoff.js';
import { JsonLinesChild, type ChildOptions } from './json-lines.js';

/**
 * Runs any executable as a plugin: kept running, JSON lines over stdio with SPS argument
 * names (see docs/plugins.md for the wire protocol). The plugin's configuration is in the
 * environment variable SESSIONGATE_PLUGIN_CONFIG (JSON).
 */
export class ProcessRuntime implements PluginRuntime {
  private readonly child: JsonLinesChild;

  constructor(
    readonly kind: PluginKind,
    name: string,
    command: string[],
    config: Record<string, unknown>,
    logger: Logger,
    cwd?: string,
    options: ChildOptions = {},
  ) {
    const [bin, ...args] = command;
    if (!bin) throw new SessionGateError('SG_ERR_CONFIG', 'process plugin needs a command');
    this.child = new JsonLinesChild(
      {
        command: bin,
        args,
        cwd,
        env: {
          ...process.env,
          SESSIONGATE_PLUGIN_CONFIG: JSON.stringify(config),
          SESSIONGATE_PLUGIN_NAME: name,
        },
        protocolOnFd3: false,
      },
      name,
      logger,
      options,
    );
  }

  async call(hook: HookName, args: HookArgs, ctx: CallContext): Promise<HookResult> {
    const result = await this.child.request(hook, args, ctx.sessionId);
    if (result !== null && result !== undefined && (typeof result !== 'object' || Array.isArray(result))) {
      throw new PluginCallError('malformed', `${hook} returned ${JSON.stringify(result).slice(0, 80)}`);
    }
    return result as HookResult;
  }

  abandon(hook: HookName): void {
    // Other calls may be in flight and fine; a hung one is simply dropped. But a process that
    // stopped in the middle of an answer line would glue that half line to the next answer.
    if (this.child.midLine()) this.child.restart(`${hook} ran past its deadline mid-answer`);
  }

  status(): RestartStatus {
    return this.child.status();
  }

  close(): Promise<void> {
    return this.child.close();
  }
}
