import type { JsonValue } from '../events/json';
import type { ReadonlyKeyValueState } from './readonly-state';

/**
 * What an `@On` method writes to: the state, with no transaction methods. The App opens and
 * closes the transaction around each command, so a projection cannot commit half a command or
 * roll back another's.
 */
export interface ProjectionState extends ReadonlyKeyValueState {
  /** Sets `key` to a JSON value; throws `InvalidEventError` for anything JSON cannot carry. */
  set(key: string, value: JsonValue): void;
  /** Deletes `key`; returns whether it existed. */
  delete(key: string): boolean;
  /** Removes every key. */
  clear(): void;
}
