import { resolve } from 'node:path';
import { importUserModule } from '../../core/user-modules.js';
import { renameKeys, toCamel, toSnake } from '../case.js';
import type { ModulePlugin, PluginContext } from '../define.js';
import { PluginCallError, PluginLoadError } from '../errors.js';
import type { CallContext, PluginRuntime } from '../runtime.js';
import {
  HOOKS,
  misnamedHooks,
  PLUGIN_KINDS,
  type HookArgs,
  type HookName,
  type HookResult,
  type PluginKind,
} from '../types.js';

/**
 * Runs a TypeScript or JavaScript plugin in this process: the default export of a module
 * written with `definePlugin`, or a built-in plugin object. Calls are plain function calls.
 */
export class ModuleRuntime implements PluginRuntime {
  readonly kind: PluginKind;

  constructor(
    private readonly plugin: ModulePlugin,
    private readonly name: string,
    private readonly config: Record<string, unknown>,
  ) {
    this.kind = plugin.kind;
    const [wrong] = misnamedHooks(plugin.kind, Object.keys(plugin));
    if (wrong !== undefined) {
      const own = HOOKS[plugin.kind].map(toCamel).join(', ');
      throw new PluginLoadError(`plugin ${name}: ${wrong} is not a hook of ${plugin.kind} plugins (${own})`);
    }
  }

  /** Import a plugin module (`.ts` too, without a build step: importUserModule). */
  static async load(path: string, name: string, config: Record<string, unknown>): Promise<ModuleRuntime> {
    const mod = (await importUserModule(resolve(path))) as { default?: unknown };
    const plugin = mod.default as ModulePlugin | undefined;
    if (!plugin || typeof plugin !== 'object' || !PLUGIN_KINDS.includes(plugin.kind)) {
      throw new PluginLoadError(
        `${path}: the default export must be definePlugin({ kind: 'aa' | 'credentialstore', ... })`,
      );
    }
    return new ModuleRuntime(plugin, name, config);
  }

  async call(hook: HookName, args: HookArgs, ctx: CallContext): Promise<HookResult> {
    const method = (this.plugin as unknown as Record<string, unknown>)[toCamel(hook)];
    if (typeof method !== 'function') {
      throw new PluginCallError('not_implemented', `plugin does not implement ${hook}`);
    }
    const pluginCtx: PluginContext = {
      name: this.name,
      config: this.config,
      log: (message) => ctx.logger.info({ plugin: ctx.plugin, hook, sessionId: ctx.sessionId }, message),
    };
    let result: unknown;
    try {
      result = await (method as (a: unknown, c: PluginContext) => unknown).call(
        this.plugin,
        renameKeys(args, toCamel),
        pluginCtx,
      );
    } catch (err) {
      throw new PluginCallError('exception', err instanceof Error ? err.message : String(err));
    }
    if (result === undefined || result === null) return result;
    if (typeof result !== 'object' || Array.isArray(result)) {
      throw new PluginCallError('malformed', `${hook} returned ${typeof result}, expected an object`);
    }
    const out = renameKeys(result, toSnake);
    if (out.question && typeof out.question === 'object') out.question = renameKeys(out.question, toSnake);
    return out;
  }

  async close(): Promise<void> {}
}
