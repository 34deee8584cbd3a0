import type { ModulePlugin } from '../define.js';
import type { PluginEnvironment } from '../load.js';

/** What a built-in plugin's factory receives besides its `config`. */
export interface BuiltinEnvironment extends PluginEnvironment {
  /** The plugin's name in the configuration. */
  name: string;
}

export type BuiltinFactory = (config: Record<string, unknown>, env: BuiltinEnvironment) => ModulePlugin;

/** The built-in plugins by `type`. */
export const BUILTIN_PLUGINS: Record<string, BuiltinFactory> = {};
