import 'reflect-metadata';
import { CommandHandler, CommandRejected, type JsonValue, type ReadonlyKeyValueState, SET } from 'appendonly';
import { fixtures } from 'appendonly/testing';

/*
 * Commands whose every decision reads the state: decided on a stale state, they would write a
 * wrong value, so they show whether an instance ever commits a stale decision.
 */

/** Appends `item` to the list at `key` (the list is rewritten whole). */
export class Push {
  constructor(
    readonly key: string,
    readonly item: number,
  ) {}
}

/** Adds 1 to the number at `key`. */
export class Increment {
  constructor(readonly key: string) {}
}

/** Moves `amount` from one account to another, if the first holds it; never below zero. */
export class Transfer {
  constructor(
    readonly from: string,
    readonly to: string,
    readonly amount: number,
  ) {}
}

/** Sets `key` when it has no value; else decides nothing (a command of no events). */
export class PutIfAbsent {
  constructor(
    readonly key: string,
    readonly value: JsonValue,
  ) {}
}

/** Sets `key` when it has no value; else refuses. */
export class CreateOnce {
  constructor(
    readonly key: string,
    readonly value: JsonValue,
  ) {}
}

/** Sets `key` to the value it held plus one, decided asynchronously in `ms` (a handler that awaits a lookup). */
export class SlowIncrement {
  constructor(
    readonly key: string,
    readonly ms: number,
  ) {}
}

/** How often each command object was decided: a retried command is decided again. */
export const decisions = new Map<object, number>();

function decided(c: object): void {
  decisions.set(c, (decisions.get(c) ?? 0) + 1);
}

@CommandHandler(Push)
export class PushHandler {
  execute(c: Push, state: ReadonlyKeyValueState) {
    decided(c);
    const list = (state.get(c.key) as number[] | undefined) ?? [];
    return [SET(c.key, [...list, c.item])];
  }
}

@CommandHandler(Increment)
export class IncrementHandler {
  execute(c: Increment, state: ReadonlyKeyValueState) {
    decided(c);
    return [SET(c.key, ((state.get(c.key) as number | undefined) ?? 0) + 1)];
  }
}

@CommandHandler(Transfer)
export class TransferHandler {
  execute(c: Transfer, state: ReadonlyKeyValueState) {
    decided(c);
    const from = (state.get(c.from) as number | undefined) ?? 0;
    const to = (state.get(c.to) as number | undefined) ?? 0;
    // Refused: no events (decided again, as any, when the commands it was decided on conflict).
    if (c.from === c.to || from < c.amount) return [];
    return [SET(c.from, from - c.amount), SET(c.to, to + c.amount)];
  }
}

@CommandHandler(PutIfAbsent)
export class PutIfAbsentHandler {
  execute(c: PutIfAbsent, state: ReadonlyKeyValueState) {
    decided(c);
    return state.has(c.key) ? [] : [SET(c.key, c.value)];
  }
}

@CommandHandler(CreateOnce)
export class CreateOnceHandler {
  execute(c: CreateOnce, state: ReadonlyKeyValueState) {
    decided(c);
    if (state.has(c.key)) throw new CommandRejected(`${c.key} exists`);
    return [SET(c.key, c.value)];
  }
}

@CommandHandler(SlowIncrement)
export class SlowIncrementHandler {
  async execute(c: SlowIncrement, state: ReadonlyKeyValueState) {
    decided(c);
    const before = (state.get(c.key) as number | undefined) ?? 0;
    await new Promise((resolve) => setTimeout(resolve, c.ms));
    return [SET(c.key, before + 1)];
  }
}

/** The conformance fixtures (Put, …) and these. */
export const classes = {
  handlers: [
    ...fixtures.conformanceClasses.handlers,
    PushHandler,
    IncrementHandler,
    TransferHandler,
    PutIfAbsentHandler,
    CreateOnceHandler,
    SlowIncrementHandler,
  ],
  projections: fixtures.conformanceClasses.projections,
};
