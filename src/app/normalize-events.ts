import { assertEventTypeName, type DomainEvent, isDomainEvent } from '../events/event';
import { isKnownEventType } from '../events/event-registry';
import { assertJsonValue, isJsonValue } from '../events/json';
import { InvalidEventError } from '../errors';

const NO_EVENTS: readonly DomainEvent[] = [];

/**
 * Turns what a handler returned into a list of valid events, or throws {@link InvalidEventError}
 * naming the handler and what was wrong. Checked before anything is applied, so bad output
 * changes nothing.
 */
export function normalizeEvents(output: unknown, handler: object): readonly DomainEvent[] {
  if (output === undefined) return NO_EVENTS;
  const list = Array.isArray(output) ? output : isDomainEvent(output) ? [output] : null;
  if (list === null) {
    throw new InvalidEventError(
      `${nameOf(handler)} returned ${describe(output)}; a handler returns events (an array of { type, data }), one event, or nothing`,
    );
  }
  for (let i = 0; i < list.length; i++) {
    const event: unknown = list[i];
    if (!isDomainEvent(event)) {
      throw new InvalidEventError(
        `${nameOf(handler)} returned ${describe(event)} at index ${i}, which is not an event`,
      );
    }
    if (!isKnownEventType(event.type)) {
      assertEventTypeName(event.type);
      throw new InvalidEventError(
        `${nameOf(handler)} returned an event of type ${event.type}, which is not defined: make it with defineEvent('${event.type}'), so that a replay knows it too`,
      );
    }
    if (!isJsonValue(event.data))
      assertJsonValue(event.data, `event ${event.type} from ${nameOf(handler)}`, 'data');
  }
  return list as readonly DomainEvent[];
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object'
    ? `an object (${value.constructor?.name ?? 'no prototype'})`
    : `a ${typeof value}`;
}

function nameOf(handler: object): string {
  return handler.constructor.name;
}
