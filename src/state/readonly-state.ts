import type { Observable } from 'rxjs';
import type { JsonValue } from '../events/json';
import type { StateChange } from './state-change';

/** The read-only view of the key-value state: what handlers, queries and `app.state` see. Reads are never logged. */
export interface ReadonlyKeyValueState {
  get(key: string): JsonValue | undefined;
  has(key: string): boolean;
  /** The number of keys. */
  readonly size: number;
  keys(): IterableIterator<string>;
  entries(): IterableIterator<[string, JsonValue]>;
  /** Every change, emitted once the command that made it has been applied (never for rolled-back work). */
  readonly changes$: Observable<StateChange>;
}
