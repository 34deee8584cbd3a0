import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Keyring } from '../../session/keyring.js';
import type { ModulePlugin } from '../define.js';

/** What built-in plugins may use from the gateway. */
export interface PluginEnvironment {
  /** Relative paths in plugin settings resolve against this folder (the config file's). */
  baseDir: string;
  keyring: Keyring;
  logger: Logger;
  /** The gateway's clock (times the plugins store must agree with the engine's); default: Date.now. */
  clock?: Clock;
}

/** What a built-in plugin's factory receives besides its `config`. */
export interface BuiltinEnvironment extends PluginEnvironment {
  /** The plugin's name in the configuration. */
  name: string;
}

/** Builds a built-in plugin from its `config` (checked by the factory) and its environment. */
export type BuiltinFactory = (config: Record<string, unknown>, env: BuiltinEnvironment) => ModulePlugin;
