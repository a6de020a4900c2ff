// Loaded, with no SDK registered, in every benchmark process (issue 17): the rows then measure
// what an application that depends on the API but exports nothing runs (every bench file imports
// this module, so each one run alone loads it too).
import '@opentelemetry/api';
import {
  CommandHandler,
  defineEvent,
  On,
  Projection,
  type ProjectionState,
  type ReadonlyKeyValueState,
  silentLogger,
  type StoreContext,
} from 'appendonly';
import { fixtures } from 'appendonly/testing';

/**
 * The commands every benchmark runs: the conformance fixtures, so that a benchmark measures the
 * same handlers the tests check. `Put(key, value)` is one built-in SET; `PutMany` one group.
 */
export const { Put, PutMany } = fixtures;

/** The handlers (and the projection) of those commands, for `createApp`. */
export const workload = fixtures.conformanceClasses;

/** An account's value in the state: an object, as most applications keep. */
export interface Account {
  readonly balance: number;
  readonly last: number;
}

/**
 * The shape of an application's command rather than a key-value SET: its handler decides on the
 * state (the balance it reads), it logs a domain event, and an `@On` projection turns that event
 * into an object value. Used where a store's figures should be the ones users see (PostgreSQL).
 */
export class Deposit {
  constructor(
    readonly account: string,
    readonly amount: number,
  ) {}
}

/** What a Deposit logs: the account, the amount, and the balance the handler decided. */
export const Deposited = defineEvent<{ account: string; amount: number; balance: number }>('Deposited');

@CommandHandler(Deposit)
export class DepositHandler {
  execute(c: Deposit, state: ReadonlyKeyValueState) {
    const balance = ((state.get(c.account) as Account | undefined)?.balance ?? 0) + c.amount;
    return [Deposited({ account: c.account, amount: c.amount, balance })];
  }
}

/** The projection of Deposited: the account's object value. */
@Projection()
export class Accounts {
  @On(Deposited)
  deposited(e: typeof Deposited.Event, kv: ProjectionState) {
    kv.set(e.data.account, { balance: e.data.balance, last: e.data.amount });
  }
}

/** The classes of the Deposit workload, for `createApp`. */
export const accounts = { handlers: [DepositHandler], projections: [Accounts] };

/** The metadata every Deposit row executes with: a correlation id, as a service passes one on. */
export const depositMetadata = (i: number) => ({ correlationId: `req-${i}` });

/**
 * A multi-event command: a transfer between two accounts logs two Deposited events (a negative
 * one for the payer) in one group, so the state applies them under the undo journal (all or
 * none) and the log writes them inside MULTI … EXEC.
 */
export class Transfer {
  constructor(
    readonly from: string,
    readonly to: string,
    readonly amount: number,
  ) {}
}

@CommandHandler(Transfer)
export class TransferHandler {
  execute(c: Transfer, state: ReadonlyKeyValueState) {
    const balanceOf = (account: string) => (state.get(account) as Account | undefined)?.balance ?? 0;
    return [
      Deposited({ account: c.from, amount: -c.amount, balance: balanceOf(c.from) - c.amount }),
      Deposited({ account: c.to, amount: c.amount, balance: balanceOf(c.to) + c.amount }),
    ];
  }
}

/**
 * A command whose projection reads before it writes: the handler decides nothing and logs the
 * amount alone; the `@On` method reads the account's value and sets the new balance.
 */
export class Credit {
  constructor(
    readonly account: string,
    readonly amount: number,
  ) {}
}

/** What a Credit logs: the account and the amount, no balance (the projection computes it). */
export const Credited = defineEvent<{ account: string; amount: number }>('Credited');

@CommandHandler(Credit)
export class CreditHandler {
  execute(c: Credit) {
    return [Credited({ account: c.account, amount: c.amount })];
  }
}

/** The projection of Credited: reads the account's balance, writes the new one. */
@Projection()
export class CreditedAccounts {
  @On(Credited)
  credited(e: typeof Credited.Event, kv: ProjectionState) {
    const balance = ((kv.get(e.data.account) as Account | undefined)?.balance ?? 0) + e.data.amount;
    kv.set(e.data.account, { balance, last: e.data.amount });
  }
}

/** The Deposit workload with the multi-event and read-before-write commands, for `createApp`. */
export const ledger = {
  handlers: [DepositHandler, TransferHandler, CreditHandler],
  projections: [Accounts, CreditedAccounts],
};

/**
 * What a store opened on its own by a benchmark (no App: raw fills and reads) is given: no
 * compaction may run, so asking for a snapshot is a bug of the row.
 */
export const benchContext: StoreContext = {
  snapshots: {
    takeSnapshot: () => {
      throw new Error('no compaction in this benchmark');
    },
  },
  logger: silentLogger,
  clock: { now: Date.now },
};
