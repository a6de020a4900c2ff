import { EventVersionError, InvalidEventError } from '../errors';
import { assertJsonValue, type JsonObject, type JsonValue } from './json';

/**
 * Turns the data of an event logged at version k into its data at version k + 1. It receives the
 * data as logged (JSON, treated as immutable: return a new value) and returns JSON.
 */
export type Upcaster = (old: JsonObject) => JsonValue;

/** The versions of one event type: the current one and the upcaster from each older one. */
interface Versions {
  readonly current: number;
  /** `steps[k]` turns version k into k + 1, for 1 ≤ k < current. */
  readonly steps: ReadonlyMap<number, Upcaster>;
}

/*
 * Invariant: a type registered here has an upcaster for every version from 1 to current − 1, so
 * any logged version up to the current one upcasts to it. A type not registered is at version 1
 * (the built-ins, an event defined without a version). Filled by `defineEvent`, read on replay,
 * by consumers and by `appendonly cat`.
 */
const registry = new Map<string, Versions>();

/** @internal Called by `defineEvent`: checks the chain is whole and records it. */
export function registerEventVersions(
  type: string,
  version: number,
  upcast: { readonly [from: number]: Upcaster } | undefined,
): void {
  if (!Number.isSafeInteger(version) || version < 1)
    throw new InvalidEventError(`event ${type}: version must be an integer ≥ 1, not ${String(version)}`);
  const steps = new Map<number, Upcaster>();
  for (const [key, fn] of Object.entries(upcast ?? {})) {
    const from = Number(key);
    if (!Number.isSafeInteger(from) || from < 1 || from >= version)
      throw new InvalidEventError(
        `event ${type}: upcast key ${key} is not a version between 1 and ${version - 1} (each key k turns version k into k + 1)`,
      );
    if (typeof fn !== 'function')
      throw new InvalidEventError(`event ${type}: upcast ${key} is not a function`);
    steps.set(from, fn);
  }
  for (let k = 1; k < version; k++) {
    if (!steps.has(k))
      throw new InvalidEventError(
        `event ${type} is at version ${version} but has no upcaster from version ${k} (upcast: { ${k}: (old) => … })`,
      );
  }
  const known = registry.get(type);
  // Defining a type twice (a module loaded twice) must agree on the version, or replay would depend on load order.
  if (known !== undefined && known.current !== version)
    throw new InvalidEventError(
      `event ${type} is defined at version ${known.current} and at version ${version}`,
    );
  if (version > 1 || known !== undefined) registry.set(type, { current: version, steps });
}

/** True once a type is defined at a version above 1: until then every event is version 1 and nothing is looked up. */
export function hasVersionedTypes(): boolean {
  return registry.size > 0;
}

/** The version at which this code logs events of `type`: 1 unless `defineEvent` said otherwise. */
export function currentEventVersion(type: string): number {
  return registry.get(type)?.current ?? 1;
}

/**
 * An event's data at the current version of its type: `data` as logged at `version`, run through
 * the upcasters from `version` up (returned as it is when it is current). Throws
 * {@link EventVersionError} for a version newer than this code knows, naming `where` (the
 * record's position: a file and offset, a table and seq), and `InvalidEventError` when an
 * upcaster returns something that is not JSON.
 */
export function upcast(type: string, version: number, data: JsonValue, where?: string): JsonValue {
  const versions = registry.get(type);
  const current = versions?.current ?? 1;
  if (version === current) return data;
  if (version > current || !Number.isSafeInteger(version) || version < 1)
    throw new EventVersionError(type, version, current, where);
  let out = data;
  for (let k = version; k < current; k++) {
    out = versions!.steps.get(k)!(out as JsonObject);
    assertJsonValue(out, `the upcaster of ${type} from version ${k}`, 'data');
  }
  return out;
}

/** True when events of `type` logged at `version` need no upcast (the hot replay path asks this first). */
export function isCurrentVersion(type: string, version: number): boolean {
  return version === (registry.get(type)?.current ?? 1);
}
