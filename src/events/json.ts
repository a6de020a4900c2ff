import { InvalidEventError } from '../errors';

/** A value that survives `JSON.stringify` → `JSON.parse` unchanged: what events and the state hold. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/** Nesting deeper than this is refused: a replayed log must never overflow the stack. */
export const MAX_JSON_DEPTH = 256;

/**
 * True when `value` is plain JSON. `JSON.stringify` alone is not enough: it drops functions and
 * `undefined`, turns NaN into null and Dates into strings, so the live state and the replayed one
 * would differ. This is on the per-command path: it allocates nothing, and a cycle shows up as
 * nesting deeper than {@link MAX_JSON_DEPTH}.
 */
export function isJsonValue(value: unknown, depth = 0): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (depth >= MAX_JSON_DEPTH) return false;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!isJsonValue(value[i], depth + 1)) return false;
        return true;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return false;
      for (const key in value) {
        if (!isJsonValue((value as Record<string, unknown>)[key], depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * Throws {@link InvalidEventError} unless `value` is plain JSON (see `isJsonValue`); the
 * message names `what` and the path to the first bad part (`data.items[2].at is a Date`).
 */
export function assertJsonValue(value: unknown, what: string, root = 'value'): asserts value is JsonValue {
  if (isJsonValue(value)) return;
  checkNested(value, what, root, []);
}

function checkNested(value: unknown, what: string, path: string, ancestors: object[]): void {
  const t = typeof value;
  if (t === 'string' || t === 'boolean' || value === null) return;
  if (t === 'number') {
    if (Number.isFinite(value)) return;
    throw new InvalidEventError(`${what}: ${path} is ${String(value)}, which JSON cannot represent`);
  }
  if (t !== 'object') {
    const kind = t === 'undefined' ? 'undefined' : `a ${t}`;
    throw new InvalidEventError(`${what}: ${path} is ${kind}, which is not JSON-serialisable`);
  }
  const obj = value as object;
  if (ancestors.includes(obj))
    throw new InvalidEventError(`${what}: ${path} refers back to itself (a cycle)`);
  if (ancestors.length >= MAX_JSON_DEPTH) {
    throw new InvalidEventError(`${what} is nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  ancestors.push(obj);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) checkNested(obj[i], what, `${path}[${i}]`, ancestors);
  } else {
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      const name = (obj as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw new InvalidEventError(`${what}: ${path} is a ${name}, not a plain object`);
    }
    for (const key of Object.keys(obj)) {
      checkNested((obj as Record<string, unknown>)[key], what, `${path}.${key}`, ancestors);
    }
  }
  ancestors.pop();
}

/** A JSON object: what a command's metadata is. */
export type JsonObject = { readonly [key: string]: JsonValue };

/** True when `value` is a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  // isJsonValue refuses an object whose prototype is neither Object.prototype nor null.
  return typeof value === 'object' && value !== null && !Array.isArray(value) && isJsonValue(value);
}
