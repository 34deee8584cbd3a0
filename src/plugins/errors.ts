import { SessionGateError } from '../core/errors.js';

/** Why a hook call failed; the host logs it, counts it and applies the verdict default. */
export class PluginCallError extends SessionGateError {
  constructor(
    readonly failure: 'exception' | 'timeout' | 'crash' | 'malformed' | 'not_implemented',
    message: string,
  ) {
    super('SG_ERR_PLUGIN_FAILED', message);
    this.name = 'PluginCallError';
  }
}

/**
 * A plugin that cannot be built: its module, manifest or hooks are wrong. The message starts
 * with what names it (the file, or `plugin NAME`).
 *
 * @example
 * ```ts
 * throw new PluginLoadError(`${path}: the default export must be definePlugin({ kind, ... })`);
 * ```
 */
export class PluginLoadError extends SessionGateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SG_ERR_PLUGIN_LOAD', message, options);
    this.name = 'PluginLoadError';
  }
}
