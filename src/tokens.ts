/**
 * The inversify tokens the framework resolves. Rebinding {@link EVENT_STORE} swaps the store and
 * nothing else changes.
 */
export const TOKENS = {
  /** The {@link EventStore} the app writes to. */
  EventStore: Symbol.for('appendonly.EventStore'),
  /** The {@link Logger}. Defaults to `consoleLogger`. */
  Logger: Symbol.for('appendonly.Logger'),
  /** The {@link Clock}. Defaults to `systemClock`. */
  Clock: Symbol.for('appendonly.Clock'),
  /** The read-only view of the state, for handlers that inject it. */
  State: Symbol.for('appendonly.State'),
} as const;

/** Shorthand for `TOKENS.EventStore`. */
export const EVENT_STORE = TOKENS.EventStore;
