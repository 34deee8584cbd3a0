import type { Clock } from '../core/clock.js';
import { isExpired } from '../core/deadline.js';
import { SessionGateError, sessionNotFound } from '../core/errors.js';
import { parseSessionId, type SessionId } from '../core/ids.js';
import type { SessionRecord } from '../core/session-types.js';
import type { SessionPatch, SessionStore } from '../store/contract.js';
import type { Keyring } from './keyring.js';
import { effectiveConfig, type AccessProfile } from './profile.js';
import {
  checkVariableName,
  DERIVED_VARIABLES,
  parseSeconds,
  READ_ONLY_VARIABLES,
  secureContext,
} from './variables.js';

export interface GetOptions {
  /** Read a secure (encrypted) variable. */
  secure?: boolean;
  /** Read the session's effective access-profile configuration instead of a variable. */
  config?: boolean;
}

/** Read-only variable access to a record (a live session or a close snapshot). */
export interface VariableReader {
  get(key: string, options?: GetOptions): string | undefined;
}

/**
 * APM's `ACCESS::session data get|set`: plain variables, secure variables (AES-256-GCM at
 * rest, bound to session id and name) and the profile configuration (`config`).
 *
 * @example
 * ```ts
 * await engine.data.set(id, 'session.logon.last.password', pw, { secure: true });
 * await engine.data.get(id, 'session.logon.last.password', { secure: true }); // pw
 * await engine.data.get(id, 'inactivity_timeout', { config: true }); // '900'
 * ```
 */
export class SessionData {
  constructor(
    private readonly store: SessionStore,
    private readonly keyring: Keyring,
    private readonly clock: Clock,
    private readonly profileOf: (name: string) => AccessProfile,
  ) {}

  /** A variable's value, or undefined when it is not set. */
  async get(id: SessionId | string, key: string, options: GetOptions = {}): Promise<string | undefined> {
    const sid = parseSessionId(id);
    const s = await this.store.get(sid);
    if (!s || isExpired(s, this.clock.now())) {
      throw sessionNotFound(sid);
    }
    return this.read(s, key, options);
  }

  /** Set a variable (value omitted = empty string). The two timeout variables change the session. */
  async set(
    id: SessionId | string,
    key: string,
    value = '',
    options: { secure?: boolean } = {},
  ): Promise<void> {
    const sid = parseSessionId(id);
    checkVariableName(key);
    if (typeof value !== 'string') {
      throw new SessionGateError('SG_ERR_INVALID_VALUE', `value of ${key} must be a string`);
    }
    if (READ_ONLY_VARIABLES.has(key)) {
      throw new SessionGateError('SG_ERR_READ_ONLY_VARIABLE', `${key} is maintained by sessiongate`);
    }
    const now = this.clock.now();
    const patch: SessionPatch = {};
    if (options.secure && Object.hasOwn(TIMEOUT_VARIABLES, key)) {
      throw new SessionGateError('SG_ERR_INVALID_VALUE', `${key} sets a timeout and cannot be secure`);
    }
    if (key === 'session.inactivity_timeout') {
      patch.idleTimeout = parseSeconds(value, key);
    } else if (key === 'session.max_session_timeout') {
      const lifetime = parseSeconds(value, key);
      const s = await this.store.get(sid);
      if (!s) throw sessionNotFound(sid);
      patch.lifetime = lifetime;
      patch.lifetimeDeadline = lifetime > 0 ? s.createdAt + lifetime * 1000 : null;
      await this.store.update(sid, patch, { now, expectedVersion: s.version });
      return;
    } else if (options.secure) {
      patch.setSecure = { [key]: this.keyring.seal(value, secureContext(sid, key)) };
      patch.deleteVariables = [key];
    } else {
      patch.setVariables = { [key]: value };
      patch.deleteSecure = [key];
    }
    await this.store.update(sid, patch, { now });
  }

  /** Variable access to a close snapshot (for ACCESS_SESSION_CLOSED and session_ended). */
  ofSnapshot(record: SessionRecord): VariableReader {
    return { get: (key, options) => this.fromRecord(record, key, options) };
  }

  /** One variable of a record already in hand (what `get` does after reading the store). */
  fromRecord(record: SessionRecord, key: string, options: GetOptions = {}): string | undefined {
    return this.read(record, key, options);
  }

  /** Secure values re-sealed for a new session id (token rotation). */
  resealFor(record: SessionRecord, newId: SessionId): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, sealed] of Object.entries(record.secure)) {
      const plain = this.keyring.open(sealed, secureContext(record.id, name));
      out[name] = this.keyring.seal(plain, secureContext(newId, name));
    }
    return out;
  }

  private read(s: SessionRecord, key: string, options: GetOptions): string | undefined {
    if (options.config) {
      const config = effectiveConfig(this.profileOf(s.profile), s);
      const name = key.startsWith('session.') ? key.slice('session.'.length) : key;
      if (!Object.hasOwn(config, name)) {
        throw new SessionGateError(
          'SG_ERR_UNKNOWN_CONFIG_KEY',
          `profile ${s.profile} has no setting ${JSON.stringify(key)}; known: ${Object.keys(config).join(', ')}`,
        );
      }
      return config[name];
    }
    checkVariableName(key);
    const sealed = own(s.secure, key);
    if (options.secure)
      return sealed === undefined ? undefined : this.keyring.open(sealed, secureContext(s.id, key));
    if (sealed !== undefined) {
      throw new SessionGateError(
        'SG_ERR_SECURE_FLAG_REQUIRED',
        `${key} is a secure variable: read it with secure`,
      );
    }
    const derived = own(DERIVED_VARIABLES, key);
    return derived ? derived(s) : own(s.variables, key);
  }
}

const TIMEOUT_VARIABLES = { 'session.inactivity_timeout': 1, 'session.max_session_timeout': 1 };

/** A property of a plain record, never one inherited from Object.prototype. */
function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
