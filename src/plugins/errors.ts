/** Why a hook call failed; the host logs it, counts it and applies the verdict default. */
export class PluginCallError extends Error {
  constructor(
    readonly failure: 'exception' | 'timeout' | 'crash' | 'malformed' | 'not_implemented',
    message: string,
  ) {
    super(message);
    this.name = 'PluginCallError';
  }
}
