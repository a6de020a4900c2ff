import type { JsonValue } from '../events/json';

/** One change of the state, as `state.changes$` reports it after the command that made it has been applied. */
export type StateChange =
  | { readonly type: 'set'; readonly key: string; readonly value: JsonValue }
  | { readonly type: 'delete'; readonly key: string }
  | { readonly type: 'clear' };
