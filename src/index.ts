/**
 * sessiongate as a library: the session engine, its stores, and the helpers for plugin and
 * rule authors.
 *
 * @example
 * ```ts
 * import { SessionEngine, MemoryStore, Keyring } from 'sessiongate';
 * const engine = new SessionEngine({ store: new MemoryStore(), keyring: Keyring.ephemeral() });
 * ```
 */
export { SessionEngine } from './session/engine.js';
export type {
  CreateOptions,
  ModifyOptions,
  ValidateResult,
  PeekResult,
  EngineOptions,
} from './session/engine.js';
export type { SessionClosedEvent, CloseHandler } from './session/dispatcher.js';
export { Keyring } from './session/keyring.js';
export { accessProfile, type AccessProfile } from './session/profile.js';
export { MemoryStore } from './store/memory/store.js';
export { SqliteStore } from './store/sqlite/store.js';
export { openStore } from './store/open.js';
export type { SessionStore, StoreCapabilities } from './store/contract.js';
export { SessionGateError, ERROR_CODES, type ErrorCode } from './core/errors.js';
export { ManualClock, systemClock, type Clock } from './core/clock.js';
export type { SessionRecord, SessionState, CloseReason } from './core/session-types.js';
export { definePlugin } from './plugins/define.js';
export type { AaPlugin, CredentialStorePlugin, PluginArgs, PluginContext } from './plugins/define.js';
export { defineRules } from './rules/define.js';
export type { RuleContext, RuleHandler, Rules } from './rules/define.js';
export { RULE_EVENTS, type RuleEvent } from './rules/events.js';
