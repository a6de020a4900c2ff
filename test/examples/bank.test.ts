import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { CommandRejected } from 'appendonly';
import { AppSpecification } from 'appendonly/testing';
import { Deposit, Deposited, bank, Transfer, Withdraw, Withdrawn } from '../../examples/bank/domain';

const spec = AppSpecification.for(bank);

describe('bank example', () => {
  it('a deposit raises the balance', () =>
    spec.given(new Deposit('alice', 10)).when(new Deposit('alice', 5)).thenState({ 'balance:alice': 15 }));

  it('a withdrawal beyond the balance is refused and changes nothing', () =>
    spec.given(new Deposit('bob', 20)).when(new Withdraw('bob', 500)).thenThrows(CommandRejected, /bob has 20/));

  it('a deposit of a non-positive amount is refused', () =>
    spec.given().when(new Deposit('alice', -5)).thenThrows(CommandRejected, /positive/));

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
    spec.given(new Deposit('alice', 10)).when(new Transfer('alice', 'bob', 40)).thenThrows(CommandRejected));
});

describe('npm start', () => {
  it('runs the demo and tells in plain words what happened', () => {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'pipe' });
    const out = execFileSync(process.execPath, ['dist/examples/bank/main.js', '--store', 'memory'], { encoding: 'utf8' });
    expect(out).toMatch(/alice deposits 100: logged as event #1/);
    expect(out).toMatch(/bob withdraws 500: refused \(bob has 20, cannot withdraw 500\)/);
    expect(out).toMatch(/two events, one atomic command\): logged as events #4-#5/);
    expect(out).toMatch(/Balances now: alice 20, bob 70/);
  });
});
