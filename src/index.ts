/**
 * appendonly: an event-sourced microframework with Redis-grade durability. Commands go onto a
 * command bus, decorated handlers turn them into events, a store appends them to a durable log,
 * and projections apply them to an in-memory key-value state that is rebuilt by replay on start.
 *
 * @packageDocumentation
 */
export { App, type AppStats, type AppStatus, type CommandResult, type ExecuteOptions } from './app/app';
export { type ClassResolver, type CreateAppOptions, createApp } from './app/create-app';
export type { EventMeta } from './app/projector';
export { CommandBus } from './bus/command-bus';
export { QueryBus } from './bus/query-bus';
export { CommandHandler, type HandlerResult, type ICommandHandler } from './decorators/command-handler';
export type { Type } from './decorators/metadata';
export { On, Projection } from './decorators/projection';
export { Consumer } from './decorators/consumer';
export type {
  ConsumerHandler,
  ConsumerReaction,
  ConsumerStart,
  ConsumerStats,
  ConsumerStatus,
  SubscribeOptions,
  Subscription,
} from './consumers/types';
export { type IQueryHandler, QueryHandler } from './decorators/query-handler';
export {
  type AppliedEvent,
  type DomainEvent,
  defineEvent,
  type EventDefinition,
  type EventMetadata,
  type EventVersionOptions,
  isDomainEvent,
  RESERVED_EVENT_TYPES,
} from './events/event';
export { isKnownEventType } from './events/event-registry';
export { EVENT_ID_PATTERN, legacyEventId, newEventId } from './events/event-id';
export {
  assertJsonValue,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  MAX_JSON_DEPTH,
} from './events/json';
export { currentEventVersion, type Upcaster, upcast } from './events/upcasters';
export {
  DEL,
  type DelData,
  FLUSHALL,
  type FlushAllData,
  type KvEventType,
  SET,
  type SetData,
} from './events/kv-events';
export { KeyValueState } from './state/key-value-state';
export type { ProjectionState } from './state/projection-state';
export type { ReadonlyKeyValueState } from './state/readonly-state';
export type { StateChange } from './state/state-change';
export { type Clock, systemClock } from './runtime/clock';
export type {
  CommandTrace,
  CompactionTrace,
  ConsumeTrace,
  ReplayTrace,
  Telemetry,
  TelemetrySource,
} from './telemetry/telemetry';
export {
  AppClosedError,
  AppendConflictError,
  AppendonlyError,
  CannotCompactError,
  CommandRejected,
  ConfigError,
  ConsumerError,
  CorruptLogError,
  DuplicateHandlerError,
  type DriverProblem,
  EventVersionError,
  InvalidEventError,
  LogCompactedError,
  LogLostError,
  MissingDriverError,
  PersistenceError,
  ProjectionsVersionError,
  ReplayFailedError,
  StaleConsumerError,
  StoreLockedError,
  TruncatedLogError,
  UnknownCommandError,
  UnknownEventTypeError,
  UnknownQueryError,
} from './errors';
export type {
  CompactionResult,
  ConsumerPosition,
  ConsumerLease,
  ConsumerRecord,
  EventGroup,
  ParkedEvent,
  ParkedEventCopy,
  EventStore,
  LogPosition,
  ReplayEnd,
  ReplayOptions,
  ReplayProgress,
  ReplaySink,
  RetentionStats,
  SnapshotInfo,
  StaleMark,
  StoreContext,
  StoreOpenInfo,
  StoreStats,
} from './store/event-store';
export {
  type PartialReplaySink,
  type ReplayedRecord,
  recordingSink,
  replaySink,
} from './store/replay-sink';
export { FSYNC_POLICIES, type FsyncPolicy, parseFsyncPolicy } from './store/fsync-policy';
export { consoleLogger, type Logger, silentLogger } from './runtime/logger';
export { MemoryStore, type MemoryStoreOptions } from './store/memory-store';
export type { SnapshotSource, StateSnapshot } from './store/snapshot-source';
export { EVENT_STORE, TOKENS } from './tokens';
export { Container } from './runtime/container';
