/**
 * The logging surface sessiongate needs: a subset of pino's API, so a pino logger can be
 * passed as is. Fields carry the session id, never a token or a secret.
 */
export interface Logger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
  /** Routine events worth a line only when looking closely (a client that went away). */
  debug?(fields: object, message: string): void;
}

/** Drops everything; the default for library use. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
