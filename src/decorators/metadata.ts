import type { EventDefinition } from '../events/event';

/** A class that can be constructed (by the container, which resolves its constructor's parameters). */
export type Type<T = object> = new (...args: never[]) => T;

/** @internal Where the decorators keep what they learned; read by `createApp`. */
export const COMMAND_HANDLER = Symbol.for('appendonly:command-handler');
/** @internal */
export const QUERY_HANDLER = Symbol.for('appendonly:query-handler');
/** @internal */
export const PROJECTION = Symbol.for('appendonly:projection');
/** @internal */
export const CONSUMER = Symbol.for('appendonly:consumer');
/** @internal */
export const ON_EVENTS = Symbol.for('appendonly:on-events');

/** @internal One `@On` method of a projection. */
export interface OnBinding {
  readonly type: string;
  readonly method: string | symbol;
}

/**
 * @internal Every class decorated so far, so that `createApp({ container })` can find the
 * handlers and projections bound in a container without being given their list.
 */
export const decoratedClasses = new Set<Type>();

/** @internal */
export function eventTypeOf(definition: Pick<EventDefinition<unknown>, 'type'> | string): string {
  return typeof definition === 'string' ? definition : definition.type;
}
