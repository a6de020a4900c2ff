import type { EventDefinition } from '../events/event';
import { decoratedClasses, eventTypeOf, ON_EVENTS, type OnBinding, PROJECTION, type Type } from './metadata';
import { registerEventType } from '../events/event-registry';
import { injectableOnce } from './injectable-once';

/**
 * Marks a class as a projection: its `@On` methods apply events to the key-value state, live and
 * on replay, so they must be deterministic and depend on nothing but the event and the state.
 */
export function Projection(): ClassDecorator {
  return (target) => {
    injectableOnce(target);
    Reflect.defineMetadata(PROJECTION, true, target);
    decoratedClasses.add(target as unknown as Type);
  };
}

/**
 * Marks a projection method as the one that applies events of a type. It is called as
 * `method(event, state, { seq, time })`; if it throws, the command is rolled back.
 */
export function On(event: Pick<EventDefinition<unknown>, 'type'> | string): MethodDecorator {
  const type = eventTypeOf(event);
  registerEventType(type);
  return (target, method) => {
    const ctor = target.constructor;
    const existing: OnBinding[] = Reflect.getOwnMetadata(ON_EVENTS, ctor) ?? [
      ...(Reflect.getMetadata(ON_EVENTS, ctor) ?? []),
    ];
    existing.push({ type, method });
    Reflect.defineMetadata(ON_EVENTS, existing, ctor);
  };
}
