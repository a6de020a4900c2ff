import { RESERVED_EVENT_TYPES } from './event';

/**
 * The event types this process knows: the built-ins, every `defineEvent`, every `@On`. A log
 * that holds another type was written by other code (a newer version, another app), and
 * replaying it would silently drop what that event meant; so replay refuses it unless told to
 * skip, and the live path refuses to log a type that replay would then refuse.
 */
// The built-ins are looked up in RESERVED_EVENT_TYPES at call time, not copied here: event.ts
// and this file import each other, and whichever loads first must not read the other's constants.
const known = new Set<string>();

/** @internal Called by `defineEvent` and `@On`. */
export function registerEventType(type: string): void {
  known.add(type);
}

/** True when `type` is built in, defined with `defineEvent`, or handled by an `@On`. */
export function isKnownEventType(type: string): boolean {
  return known.has(type) || RESERVED_EVENT_TYPES.has(type);
}
