import { RESERVED_EVENT_TYPES } from './event';

/**
 * The event types this process knows: the built-ins, every `defineEvent`, every `@On`. A log
 * that holds another type was written by other code (a newer version, another app), and
 * replaying it would silently drop what that event meant; so replay refuses it unless told to
 * skip, and the live path refuses to log a type that replay would then refuse.
 */
const known = new Set<string>(RESERVED_EVENT_TYPES);

/** @internal Called by `defineEvent` and `@On`. */
export function registerEventType(type: string): void {
  known.add(type);
}

/** True when `type` is built in, defined with `defineEvent`, or handled by an `@On`. */
export function isKnownEventType(type: string): boolean {
  return known.has(type);
}
