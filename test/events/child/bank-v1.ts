// Release 1 of a bank: `Deposited` defined without a version (version 1: { account, amount }).
// Writes `argv[4]` deposits to the store of kind argv[2] at argv[3], prints `done <lastSeq>`.
import 'reflect-metadata';
import { CommandHandler, createApp, defineEvent, type EventStore, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';

class Deposit {
  constructor(
    readonly account: string,
    readonly amount: number,
  ) {}
}
const Deposited = defineEvent<{ account: string; amount: number }>('Deposited');

@CommandHandler(Deposit)
class DepositHandler {
  execute(c: Deposit) {
    return [Deposited({ account: c.account, amount: c.amount })];
  }
}

async function main(): Promise<void> {
  const [kind, where, count] = process.argv.slice(2);
  const store: EventStore =
    kind === 'aof'
      ? new AofStore({ dir: where, appendfsync: 'always' })
      : new SqliteWalStore({ file: where });
  const app = await createApp({ handlers: [DepositHandler], store, logger: silentLogger });
  let last = 0;
  for (let i = 1; i <= Number(count); i++) last = (await app.execute(new Deposit('alice', i))).lastSeq;
  await app.close();
  process.stdout.write(`done ${last}\n`);
}
main().catch((err: unknown) => {
  process.stdout.write(`error ${(err as Error).message}\n`);
  process.exit(3);
});
