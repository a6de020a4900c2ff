import { InvalidEventError } from '../errors';
import { registerEventType } from './event-registry';
import type { JsonValue } from './json';

/** An event: plain, JSON-serialisable data with a type name. What handlers return and stores log. */
export interface DomainEvent<TType extends string = string, TData = JsonValue> {
  readonly type: TType;
  readonly data: TData;
}

/** An event applied to the state, with its global sequence number and the time it was applied (ms). */
export interface AppliedEvent {
  readonly seq: number;
  readonly time: number;
  readonly event: DomainEvent;
}

/**
 * A typed event factory made by {@link defineEvent}: call it to make an event, use `is` as a
 * type guard, and `typeof X.Event` as the event's type in projections.
 */
export interface EventDefinition<TData, TType extends string = string> {
  (data: TData): DomainEvent<TType, TData>;
  /** The event type name written to the log. */
  readonly type: TType;
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
 */
export function defineEvent<TData, TType extends string = string>(
  type: TType,
): EventDefinition<TData, TType> {
  assertEventTypeName(type);
  if (RESERVED_EVENT_TYPES.has(type) || /^(multi|exec)$/i.test(type)) {
    // MULTI and EXEC in any case: redis-check-aof reads them so, and would see a broken transaction.
    throw new InvalidEventError(
      `event type ${type} is reserved for the built-in key-value events and the log format`,
    );
  }
  registerEventType(type);
  return makeDefinition<TData, TType>(type, (data) => ({ type, data }));
}

/** @internal Shared by {@link defineEvent} and the built-in events. */
export function makeDefinition<TData, TType extends string, TArgs extends unknown[] = [TData]>(
  type: TType,
  make: (...args: TArgs) => DomainEvent<TType, TData>,
): EventDefinition<TData, TType> & ((...args: TArgs) => DomainEvent<TType, TData>) {
  const factory = ((...args: TArgs) => make(...args)) as unknown as EventDefinition<TData, TType> &
    ((...args: TArgs) => DomainEvent<TType, TData>);
  Object.defineProperty(factory, 'type', { value: type, enumerable: true });
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
