import { makeDefinition } from './event';
import type { JsonValue } from './json';

/** Data of the built-in `SET` event: logged as `SET key json` (Redis's own command shape). */
export type SetData = {
  readonly key: string;
  readonly value: JsonValue;
};

/** Data of the built-in `DEL` event: logged as `DEL key…`. */
export type DelData = {
  readonly keys: readonly string[];
};

/** Data of the built-in `FLUSHALL` event: logged as `FLUSHALL`. Empties the whole state. */
export type FlushAllData = Readonly<Record<string, never>>;

/** Built-in event: sets `key` to `value` in the state, with no projection involved. */
export const SET = makeDefinition<SetData, 'SET', [key: string, value: JsonValue]>('SET', (key, value) => ({
  type: 'SET',
  data: { key, value },
}));

/** Built-in event: deletes the keys from the state. */
export const DEL = makeDefinition<DelData, 'DEL', string[]>('DEL', (...keys) => ({
  type: 'DEL',
  data: { keys },
}));

/** Built-in event: empties the state. Logged like Redis logs FLUSHALL; `appendonly strip` undoes it. */
export const FLUSHALL = makeDefinition<FlushAllData, 'FLUSHALL', []>('FLUSHALL', () => ({
  type: 'FLUSHALL',
  data: {},
}));

/** The type names of the built-in key-value events. */
export type KvEventType = 'SET' | 'DEL' | 'FLUSHALL';
