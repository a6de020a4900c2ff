import type { OnBinding } from '../decorators/metadata';
import type { DomainEvent, EventMetadata } from '../events/event';
import type { JsonValue } from '../events/json';
import type { DelData, SetData } from '../events/kv-events';
import { type KeyValueState, projectionView } from '../state/key-value-state';
import type { ProjectionState } from '../state/projection-state';
import { InvalidEventError } from '../errors';
import { legacyEventId } from '../events/event-id';

/** The third argument of an `@On` method: where the event is in the log, and its envelope. */
export interface EventMeta {
  readonly seq: number;
  /** When its command was applied, in ms since the epoch (0 when the log did not record it). */
  readonly time: number;
  /** Its id (see `AppliedEvent.id`). */
  readonly id: string;
  /** The version of the data the projection receives: always its type's current one (older events are upcast first). */
  readonly version: number;
  /** Its command's metadata; absent when it had none. */
  readonly metadata?: EventMetadata;
}

type Apply = (event: DomainEvent, state: ProjectionState, meta: EventMeta) => void;

/**
 * Applies events to the state: the built-in KV events directly, every event to the projection
 * methods registered for its type. The same code runs live and on replay, which is what makes
 * replay give the live state.
 */
export class Projector {
  /** What projections write to: the state without its transaction methods. */
  private readonly view: ProjectionState;

  constructor(
    private readonly state: KeyValueState,
    private readonly byType = new Map<string, Apply[]>(),
  ) {
    this.view = projectionView(state);
  }

  /** The same projections, writing to `state` (a reload built off to the side). */
  over(state: KeyValueState): Projector {
    return new Projector(state, this.byType);
  }

  /** Registers the `@On` methods of one projection instance. */
  add(instance: object, bindings: readonly OnBinding[]): void {
    for (const { type, method } of bindings) {
      const fn = (instance as Record<string | symbol, unknown>)[method];
      if (typeof fn !== 'function') continue;
      const list = this.byType.get(type) ?? [];
      list.push(fn.bind(instance) as Apply);
      this.byType.set(type, list);
    }
  }

  /**
   * True when applying `event` cannot throw: a built-in KV event of a valid shape that no
   * projection listens to (its data is already known to be JSON). A command of one such event
   * needs no undo journal, which spares a lookup of the key's previous value.
   */
  cannotFail(event: DomainEvent): boolean {
    if (this.byType.has(event.type)) return false;
    switch (event.type) {
      case 'SET':
        return isSetData(event.data);
      case 'DEL':
        return isKeyList((event.data as unknown as DelData).keys);
      default:
        return true;
    }
  }

  /**
   * Applies a SET read back from the log (its key a string, its value JSON): straight into the
   * state, and as an event to the projections of SET if there are any. Throws what they throw.
   */
  applySet(
    key: string,
    value: JsonValue,
    seq: number,
    time: number,
    id: string | undefined,
    metadata: EventMetadata | undefined,
  ): void {
    this.state.load(key, value);
    const handlers = this.byType.get('SET');
    if (handlers === undefined) return;
    const event = { type: 'SET', data: { key, value } } as unknown as DomainEvent;
    const meta = eventMeta(seq, time, id, 1, metadata);
    for (let i = 0; i < handlers.length; i++) handlers[i](event, this.view, meta);
  }

  /**
   * Applies one event (`id` undefined: logged before ids); throws what a projection throws (the caller rolls back). The event's data
   * is known to be JSON (checked when the handler returned it, or read back from the log, where
   * only JSON can be), so SET skips the value check and only the shape is checked.
   */
  apply(
    event: DomainEvent,
    seq: number,
    time: number,
    id: string | undefined,
    version: number,
    metadata: EventMetadata | undefined,
  ): void {
    const state = this.state;
    switch (event.type) {
      case 'SET': {
        const data = event.data as unknown;
        if (isSetData(data)) state.load(data.key, data.value);
        else state.set((data as SetData).key, (data as SetData).value); // throws, saying what is wrong
        break;
      }
      case 'DEL': {
        const keys = (event.data as unknown as DelData).keys;
        if (!isKeyList(keys)) throw new InvalidEventError('a DEL event carries { keys: string[] }');
        for (let i = 0; i < keys.length; i++) state.delete(keys[i]);
        break;
      }
      case 'FLUSHALL':
        state.clear();
        break;
    }
    const handlers = this.byType.get(event.type);
    if (handlers === undefined) return;
    const meta = eventMeta(seq, time, id, version, metadata);
    for (let i = 0; i < handlers.length; i++) handlers[i](event, this.view, meta);
  }
}

/**
 * The meta of one event, with no `metadata` key when there is none (it compares equal to a
 * literal). `id` undefined: an event logged before ids, whose id is derived here, only when a
 * projection asks (most of a replay applies SETs no projection listens to).
 */
function eventMeta(
  seq: number,
  time: number,
  logged: string | undefined,
  version: number,
  metadata: EventMetadata | undefined,
): EventMeta {
  const id = logged ?? legacyEventId(seq);
  return metadata === undefined ? { seq, time, id, version } : { seq, time, id, version, metadata };
}

function isKeyList(keys: unknown): keys is readonly string[] {
  if (!Array.isArray(keys)) return false;
  for (let i = 0; i < keys.length; i++) if (typeof keys[i] !== 'string') return false;
  return true;
}

/** A SET's data as the state takes it: a string key and a value (known to be JSON). */
function isSetData(data: unknown): data is SetData {
  const d = data as Partial<SetData>;
  return typeof d.key === 'string' && d.value !== undefined;
}
