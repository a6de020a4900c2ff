import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CommandRejected, createApp, type EventStore, silentLogger } from 'appendonly';
import { AppSpecification } from 'appendonly/testing';
import { Deposit, Deposited, bank, Transfer, Withdraw, Withdrawn } from '../../examples/bank/domain';
import { makeStore } from '../../examples/bank/store';

const spec = AppSpecification.for(bank);

describe('bank example', () => {
  it('a deposit raises the balance', () =>
    spec.given(new Deposit('alice', 10)).when(new Deposit('alice', 5)).thenState({ 'balance:alice': 15 }));

  it('a withdrawal beyond the balance is refused and changes nothing', () =>
    spec
      .given(new Deposit('bob', 20))
      .when(new Withdraw('bob', 500))
      .thenThrows(CommandRejected, /bob has 20/));

  it('a deposit of a non-positive amount is refused', () =>
    spec
      .given()
      .when(new Deposit('alice', -5))
      .thenThrows(CommandRejected, /positive/));

  it('a transfer is two events in one atomic command', () =>
    spec
      .given(new Deposit('alice', 100))
      .when(new Transfer('alice', 'bob', 40))
      .thenEvents([Withdrawn({ account: 'alice', amount: 40 }), Deposited({ account: 'bob', amount: 40 })]));

  it('a transfer moves the money', () =>
    spec
      .given(new Deposit('alice', 100), new Withdraw('alice', 10))
      .when(new Transfer('alice', 'bob', 40))
      .thenState({ 'balance:alice': 50, 'balance:bob': 40 }));

  it('an overdrawing transfer is refused', () =>
    spec
      .given(new Deposit('alice', 10))
      .when(new Transfer('alice', 'bob', 40))
      .thenThrows(CommandRejected));
});

describe('the same commands on every store', () => {
  it.each(['aof', 'sqlite'])("%s gives the memory store's state, live and after replay", async (kind) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'appendonly-bank-'));
    const commands = [
      new Deposit('alice', 100),
      new Deposit('bob', 5),
      new Transfer('alice', 'bob', 60),
      new Withdraw('bob', 1000),
      new Withdraw('bob', 15),
      new Transfer('bob', 'carol', 50),
    ];
    const run = async (store: EventStore) => {
      const app = await createApp({ ...bank, store, logger: silentLogger });
      for (const c of commands) await app.execute(c).catch(() => undefined);
      const live = Object.fromEntries(app.state.entries());
      await app.close();
      return live;
    };
    try {
      const expected = await run(makeStore('memory', dir));
      expect(await run(makeStore(kind, dir))).toEqual(expected);
      const reopened = await createApp({ ...bank, store: makeStore(kind, dir), logger: silentLogger });
      const afterReplay = Object.fromEntries(reopened.state.entries());
      await reopened.close();
      expect(afterReplay).toEqual(expected);
      expect(expected).toEqual({ 'balance:alice': 40, 'balance:bob': 0, 'balance:carol': 50 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the npm start demo', () => {
  it('runs on the AOF store and, run again, starts from the balances it left', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'appendonly-bank-'));
    try {
      // The sources run directly (test/support/register.js), as `npm start` runs their build.
      const demo = () =>
        execFileSync(
          process.execPath,
          ['-r', './test/support/register.js', 'examples/bank/main.ts', '--data', dir],
          {
            encoding: 'utf8',
          },
        );
      const first = demo();
      expect(first).toMatch(/Opened the aof store/);
      expect(first).toMatch(/alice deposits 100: logged as event #1/);
      expect(first).toMatch(/bob withdraws 500: refused \(bob has 20, cannot withdraw 500\)/);
      expect(first).toMatch(/two events, one atomic command\): logged as events #4-#5/);
      expect(first).toMatch(/Balances now: alice 20, bob 70/);
      const second = demo();
      expect(second).toMatch(/Balances after replay: alice 20, bob 70/);
      expect(second).toMatch(/alice deposits 100: logged as event #6/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
