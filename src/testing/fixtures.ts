import { CommandHandler } from '../decorators/command-handler';
import { On, Projection } from '../decorators/projection';
import { CommandRejected } from '../errors';
import { defineEvent } from '../events/event';
import type { JsonValue } from '../events/json';
import { DEL, FLUSHALL, SET } from '../events/kv-events';
import type { ProjectionState } from '../state/projection-state';
import type { ReadonlyKeyValueState } from '../state/readonly-state';

/** Conformance fixture: sets one key (a built-in SET). */
export class Put {
  constructor(
    readonly key: string,
    readonly value: JsonValue,
  ) {}
}

/** Conformance fixture: sets several keys in one command (one atomic group). */
export class PutMany {
  constructor(readonly entries: readonly (readonly [string, JsonValue])[]) {}
}

/** Conformance fixture: deletes keys. */
export class Remove {
  constructor(readonly keys: readonly string[]) {}
}

/** Conformance fixture: empties the state. */
export class FlushAll {}

/** Conformance fixture: adds `by` to a counter through a user event and a projection. */
export class Count {
  constructor(
    readonly key: string,
    readonly by: number,
  ) {}
}

/** Conformance fixture: sets `key`, then emits an event whose projection throws. */
export class Explode {
  constructor(readonly key: string) {}
}

/** Conformance fixture: a command its handler always refuses (`CommandRejected`). */
export class Refuse {
  constructor(readonly reason: string) {}
}

/** A user event: a counter moved. */
export const Counted = defineEvent<{ key: string; by: number }>('Counted');
/** A user event whose projection always throws. */
export const Exploded = defineEvent<{ key: string }>('Exploded');

@CommandHandler(Put)
export class PutHandler {
  execute(c: Put) {
    return [SET(c.key, c.value)];
  }
}

@CommandHandler(PutMany)
export class PutManyHandler {
  execute(c: PutMany) {
    return c.entries.map(([key, value]) => SET(key, value));
  }
}

@CommandHandler(Remove)
export class RemoveHandler {
  execute(c: Remove) {
    return [DEL(...c.keys)];
  }
}

@CommandHandler(FlushAll)
export class FlushAllHandler {
  execute() {
    return [FLUSHALL()];
  }
}

@CommandHandler(Count)
export class CountHandler {
  execute(c: Count, _state: ReadonlyKeyValueState) {
    return [Counted({ key: c.key, by: c.by })];
  }
}

@CommandHandler(Explode)
export class ExplodeHandler {
  execute(c: Explode) {
    return [SET(c.key, 'half-applied'), Exploded({ key: c.key })];
  }
}

@CommandHandler(Refuse)
export class RefuseHandler {
  execute(c: Refuse): never {
    throw new CommandRejected(`refused: ${c.reason}`);
  }
}

@Projection()
export class Counters {
  @On(Counted)
  counted(e: typeof Counted.Event, kv: ProjectionState) {
    kv.set(e.data.key, ((kv.get(e.data.key) as number | undefined) ?? 0) + e.data.by);
  }

  @On(Exploded)
  exploded(e: typeof Exploded.Event) {
    throw new Error(`projection refused ${e.data.key}`);
  }
}

/** The handlers and projections of the conformance suite, ready for `createApp`. */
export const conformanceClasses = {
  handlers: [
    PutHandler,
    PutManyHandler,
    RemoveHandler,
    FlushAllHandler,
    CountHandler,
    ExplodeHandler,
    RefuseHandler,
  ],
  projections: [Counters],
};

/** The commands, events, handlers and projection that `runStoreConformance` drives, for your own store tests. */
export const fixtures = {
  Put,
  PutMany,
  Remove,
  FlushAll,
  Count,
  Explode,
  Refuse,
  Counted,
  Exploded,
  conformanceClasses,
} as const;
