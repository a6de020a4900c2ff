import 'reflect-metadata';
import { CommandHandler, type ReadonlyKeyValueState, SET } from 'appendonly';
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
    // A refused transfer still logs a write (its balance, unchanged): a command of no events
    // waits on the previous append and takes its rejection, a conflict included (src/app/commit.ts).
    if (c.from === c.to || from < c.amount) return [SET(c.from, from)];
    return [SET(c.from, from - c.amount), SET(c.to, to + c.amount)];
  }
}

/** The conformance fixtures (Put, …) and these. */
export const classes = {
  handlers: [...fixtures.conformanceClasses.handlers, PushHandler, IncrementHandler, TransferHandler],
  projections: fixtures.conformanceClasses.projections,
};
