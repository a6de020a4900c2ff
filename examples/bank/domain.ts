import {
  CommandHandler,
  CommandRejected,
  defineEvent,
  type ProjectionState,
  On,
  Projection,
  QueryHandler,
  type ReadonlyKeyValueState,
} from 'appendonly';

/** Put money into an account. */
export class Deposit {
  constructor(
    readonly account: string,
    readonly amount: number,
  ) {}
}

/** Take money out of an account; refused when the balance would go below zero. */
export class Withdraw {
  constructor(
    readonly account: string,
    readonly amount: number,
  ) {}
}

/** Move money between two accounts: two events, applied and logged all or none. */
export class Transfer {
  constructor(
    readonly from: string,
    readonly to: string,
    readonly amount: number,
  ) {}
}

/** Read one balance (a query: never logged). */
export class GetBalance {
  constructor(readonly account: string) {}
}

export const Deposited = defineEvent<{ account: string; amount: number }>('Deposited');
export const Withdrawn = defineEvent<{ account: string; amount: number }>('Withdrawn');

/** The state key of an account's balance. */
export const balanceKey = (account: string) => `balance:${account}`;

function balance(state: ReadonlyKeyValueState, account: string): number {
  return (state.get(balanceKey(account)) as number | undefined) ?? 0;
}

function assertAmount(amount: number): void {
  if (!(Number.isInteger(amount) && amount > 0))
    throw new CommandRejected(`amount must be a positive whole number, got ${amount}`);
}

@CommandHandler(Deposit)
export class DepositHandler {
  execute(cmd: Deposit) {
    assertAmount(cmd.amount);
    return [Deposited({ account: cmd.account, amount: cmd.amount })];
  }
}

@CommandHandler(Withdraw)
export class WithdrawHandler {
  execute(cmd: Withdraw, state: ReadonlyKeyValueState) {
    assertAmount(cmd.amount);
    const available = balance(state, cmd.account);
    if (available < cmd.amount) {
      throw new CommandRejected(`${cmd.account} has ${available}, cannot withdraw ${cmd.amount}`);
    }
    return [Withdrawn({ account: cmd.account, amount: cmd.amount })];
  }
}

@CommandHandler(Transfer)
export class TransferHandler {
  execute(cmd: Transfer, state: ReadonlyKeyValueState) {
    assertAmount(cmd.amount);
    if (cmd.from === cmd.to) throw new CommandRejected('cannot transfer to the same account');
    const available = balance(state, cmd.from);
    if (available < cmd.amount) {
      throw new CommandRejected(`${cmd.from} has ${available}, cannot transfer ${cmd.amount}`);
    }
    return [
      Withdrawn({ account: cmd.from, amount: cmd.amount }),
      Deposited({ account: cmd.to, amount: cmd.amount }),
    ];
  }
}

@QueryHandler(GetBalance)
export class GetBalanceHandler {
  execute(q: GetBalance, state: ReadonlyKeyValueState): number {
    return balance(state, q.account);
  }
}

@Projection()
export class Balances {
  @On(Deposited)
  deposited(e: typeof Deposited.Event, kv: ProjectionState) {
    kv.set(balanceKey(e.data.account), balance(kv, e.data.account) + e.data.amount);
  }

  @On(Withdrawn)
  withdrawn(e: typeof Withdrawn.Event, kv: ProjectionState) {
    kv.set(balanceKey(e.data.account), balance(kv, e.data.account) - e.data.amount);
  }
}

/**
 * Everything the bank app is made of, for `createApp`. `projectionsVersion` names the logic of
 * `Balances`: a release that changes it bumps the version, and never loads a snapshot of the old.
 */
export const bank = {
  handlers: [DepositHandler, WithdrawHandler, TransferHandler, GetBalanceHandler],
  projections: [Balances],
  projectionsVersion: 1,
};
