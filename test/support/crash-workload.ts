import { type JsonValue, SET } from 'appendonly';

/** Keys the workload cycles through: few enough that keys are overwritten, many enough to matter. */
const KEYS = 97;

/**
 * Command number `i` of the crash workload, as the events it produces: a multi-event group that
 * sets a cycling key and `last`, so a replay that kept half a group would show `last` and the key
 * disagreeing. Pure: the parent rebuilds the expected state from the numbers alone.
 */
export function workloadEvents(i: number) {
  return [SET(`k${i % KEYS}`, { i, pad: 'x'.repeat(i % 50) }), SET('last', i)];
}

/** The state after commands 0..n-1, as the model (a plain Map fed the same commands) sees it. */
export function modelState(n: number): Record<string, JsonValue> {
  const model = new Map<string, JsonValue>();
  for (let i = 0; i < n; i++) {
    for (const e of workloadEvents(i)) model.set(e.data.key, e.data.value);
  }
  return Object.fromEntries(model);
}
