import type { OnBinding } from '../decorators/metadata';
import type { DomainEvent } from '../events/event';
import type { DelData, SetData } from '../events/kv-events';
import type { KeyValueState } from '../state/key-value-state';

/** The third argument of an `@On` method. */
export interface EventMeta {
  readonly seq: number;
  readonly time: number;
}

type Apply = (event: DomainEvent, state: KeyValueState, meta: EventMeta) => void;

/**
 * Applies events to the state: the built-in KV events directly, every event to the projection
 * methods registered for its type. The same code runs live and on replay, which is what makes
 * replay give the live state.
 */
export class Projector {
  private readonly byType = new Map<string, Apply[]>();

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

  /** The event types some projection listens to. */
  knownTypes(): ReadonlySet<string> {
    return new Set(this.byType.keys());
  }

  /**
   * Applies one event; throws what a projection throws (the caller rolls back). `fromLog`: the
   * event was read back from the log, where only valid JSON can be, so SET skips the check.
   */
  apply(event: DomainEvent, state: KeyValueState, seq: number, time: number, fromLog = false): void {
    switch (event.type) {
      case 'SET': {
        const data = event.data as unknown as SetData;
        if (fromLog) state.load(data.key, data.value);
        else state.set(data.key, data.value);
        break;
      }
      case 'DEL':
        for (const key of (event.data as unknown as DelData).keys) state.delete(key);
        break;
      case 'FLUSHALL':
        state.clear();
        break;
    }
    const handlers = this.byType.get(event.type);
    if (handlers === undefined) return;
    const meta: EventMeta = { seq, time };
    for (let i = 0; i < handlers.length; i++) handlers[i](event, state, meta);
  }
}
