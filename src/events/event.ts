import { InvalidEventError } from '../errors';
import { registerEventType } from './event-registry';
import type { JsonObject, JsonValue } from './json';
import { registerEventVersions, type Upcaster } from './upcasters';

/** An event: plain, JSON-serialisable data with a type name. What handlers return and stores log. */
export interface DomainEvent<TType extends string = string, TData = JsonValue> {
  readonly type: TType;
  readonly data: TData;
}

/**
 * A command's metadata: a JSON object (correlation id, causation id, trace context, user
 * fields), given with `execute(command, { metadata })`, logged with its events and handed back
 * with each of them (projections' third argument, `events$`, replay).
 */
export type EventMetadata = JsonObject;

/**
 * An event applied to the state and durable: what `app.events$` reports (and consumers receive).
 * `seq` is its place in the log, which tools may renumber; `id` is its identity, which no other
 * event has and which every rewrite of the log keeps.
 */
export interface AppliedEvent {
  readonly seq: number;
  /** When its command was applied, in ms since the epoch (0 when the log did not record it). */
  readonly time: number;
  /** The event's type (the same as `event.type`). */
  readonly type: string;
  /** The event's data at `version` (the same as `event.data`). */
  readonly data: JsonValue;
  /** A UUIDv7 made when its command was applied and logged with it (derived from the seq for an event logged before ids). */
  readonly id: string;
  /** The version of `data`: the current one of its type (replay and consumers upcast older events). */
  readonly version: number;
  /** Its command's metadata; absent when the command had none. */
  readonly metadata?: EventMetadata;
  /** The event itself, as before `type` and `data` were flattened: kept for existing code. */
  readonly event: DomainEvent;
}

/** The options of a versioned {@link defineEvent}. */
export interface EventVersionOptions {
  /** The version events of this type are logged at now (an integer ≥ 1; default 1). */
  readonly version?: number;
  /**
   * `upcast[k]` turns the data of version k into that of version k + 1, for every k from 1 to
   * `version` − 1: replay, consumers and `appendonly cat` chain them up to `version`.
   */
  readonly upcast?: { readonly [from: number]: Upcaster };
}

/**
 * A typed event factory made by {@link defineEvent}: call it to make an event, use `is` as a
 * type guard, and `typeof X.Event` as the event's type in projections.
 */
export interface EventDefinition<TData, TType extends string = string> {
  (data: TData): DomainEvent<TType, TData>;
  /** The event type name written to the log. */
  readonly type: TType;
  /** The version its events are logged at (1 unless defined with `{ version }`). */
  readonly version: number;
  /** True when `event` is of this type. */
  is(event: DomainEvent<string, unknown>): event is DomainEvent<TType, TData>;
  /** Type-level only (undefined at run time): the type of the events this definition makes. */
  readonly Event: DomainEvent<TType, TData>;
}

/** Type names the log format keeps for itself: a user event of these names could not be told apart. */
export const RESERVED_EVENT_TYPES: ReadonlySet<string> = new Set(['SET', 'DEL', 'FLUSHALL', 'MULTI', 'EXEC']);

const TYPE_PATTERN = /^[A-Za-z_][A-Za-z0-9_.:-]{0,127}$/;

/** Throws unless `type` can name an event in every store's format. */
export function assertEventTypeName(type: string): void {
  if (!TYPE_PATTERN.test(type)) {
    throw new InvalidEventError(
      `event type ${JSON.stringify(type)} is not valid: use 1-128 letters, digits, '_', '.', ':' or '-', starting with a letter`,
    );
  }
}

/**
 * Defines a user event type.
 *
 * ```ts
 * const Deposited = defineEvent<{ account: string; amount: number }>('Deposited');
 * const e = Deposited({ account: 'alice', amount: 10 }); // { type: 'Deposited', data: {...} }
 * ```
 *
 * A type whose data changed shape gets a version and the upcasters from each older one; events
 * logged before are upcast when read back, new ones are logged at `version`:
 *
 * ```ts
 * const Deposited = defineEvent<{ account: string; amount: number; currency: string }>('Deposited', {
 *   version: 2,
 *   upcast: { 1: (old) => ({ ...old, currency: 'EUR' }) },
 * });
 * ```
 */
export function defineEvent<TData, TType extends string = string>(
  type: TType,
  options?: EventVersionOptions,
): EventDefinition<TData, TType> {
  assertEventTypeName(type);
  if (RESERVED_EVENT_TYPES.has(type) || /^(multi|exec)$/i.test(type)) {
    // MULTI and EXEC in any case: redis-check-aof reads them so, and would see a broken transaction.
    throw new InvalidEventError(
      `event type ${type} is reserved for the built-in key-value events and the log format`,
    );
  }
  const version = options?.version ?? 1;
  registerEventVersions(type, version, options?.upcast);
  registerEventType(type);
  return makeDefinition<TData, TType>(type, (data) => ({ type, data }), version);
}

/**
 * @internal Shared by {@link defineEvent} and the built-in events. `make` becomes the factory
 * itself (it gets the definition's properties, so it must be a function made for this one): a
 * wrapper forwarding `...args` would cost every event an arguments array.
 */
export function makeDefinition<TData, TType extends string, TArgs extends unknown[] = [TData]>(
  type: TType,
  make: (...args: TArgs) => DomainEvent<TType, TData>,
  version = 1,
): EventDefinition<TData, TType> & ((...args: TArgs) => DomainEvent<TType, TData>) {
  const factory = make as unknown as EventDefinition<TData, TType> &
    ((...args: TArgs) => DomainEvent<TType, TData>);
  Object.defineProperty(factory, 'type', { value: type, enumerable: true });
  Object.defineProperty(factory, 'version', { value: version, enumerable: true });
  Object.defineProperty(factory, 'name', { value: type });
  Object.defineProperty(factory, 'is', {
    value: (event: DomainEvent<string, unknown>): boolean => event !== null && event?.type === type,
  });
  Object.defineProperty(factory, 'Event', { value: undefined });
  return factory;
}

/** True when `value` has the shape of an event (`{ type: string, data }`). */
export function isDomainEvent(value: unknown): value is DomainEvent<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { type?: unknown }).type === 'string' &&
    'data' in value
  );
}

/** @internal What `events$` and consumers get for one event: flattened, with its envelope. */
export function appliedEvent(
  seq: number,
  time: number,
  event: DomainEvent,
  id: string,
  version: number,
  metadata: EventMetadata | undefined,
): AppliedEvent {
  const { type, data } = event;
  return metadata === undefined
    ? { seq, time, type, data, id, version, event }
    : { seq, time, type, data, id, version, metadata, event };
}
