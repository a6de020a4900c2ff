// Opens an AofStore on argv[2] and keeps it open, writing one command per 10 ms, until killed.
// Prints `ready <pid>` once it holds the lock, `ack <n>` per acknowledged command, or `locked <message>`.
import 'reflect-metadata';
import { createApp, silentLogger, StoreLockedError } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';

async function main(): Promise<void> {
  const dir = process.argv[2];
  try {
    const app = await createApp({
      ...fixtures.conformanceClasses,
      store: new AofStore({ dir, appendfsync: 'always' }),
      logger: silentLogger,
    });
    process.stdout.write(`ready ${process.pid}\n`);
    for (let n = 0; ; n++) {
      await app.execute(new fixtures.Put('child', n));
      process.stdout.write(`ack ${n}\n`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } catch (err) {
    if (err instanceof StoreLockedError) process.stdout.write(`locked ${err.message}\n`);
    else process.stdout.write(`error ${(err as Error).message}\n`);
    process.exit(3);
  }
}
void main();
