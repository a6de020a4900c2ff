/**
 * A child process on a PostgreSQL log, for the multi-process tests. argv: url log mode [count] [id].
 * - `mixed N id`: once a line (`go`) is read from stdin, N Increment('counter') and N random
 *   Transfers between acct:0..4, 16 in flight;
 *   prints `done <stats json>`, then on each `sync` line read from stdin makes one idempotent
 *   write (Put('synced', true)), which brings it up to the head, and prints `state <json>`.
 * - `write N id`: Put('w<id>:<i>', i) for i < N (N = 0: forever), 16 in flight, printing `ack <i>`
 *   with a synchronous write once each is acknowledged (every line read was an acknowledgement).
 */
import 'reflect-metadata';
import { writeSync } from 'node:fs';
import { createApp, silentLogger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import { classes, Increment, Transfer } from '../domain';

async function main(): Promise<void> {
  const [url, log, mode, countArg, id] = process.argv.slice(2);
  const count = Number(countArg);
  const store = new PostgresStore({ connectionString: url, log, appendfsync: 'always' });
  const app = await createApp({ ...classes, store, logger: silentLogger });
  writeSync(1, 'ready\n');
  let next = 0;
  const more = () => count === 0 || next < count;
  if (mode === 'write') {
    const worker = async () => {
      while (more()) {
        const i = next++;
        await app.execute(new fixtures.Put(`w${id}:${i}`, i));
        writeSync(1, `ack ${i}\n`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    writeSync(1, 'done\n');
    return;
  }
  // Everyone starts at once: wait for `go` on stdin.
  await new Promise<void>((resolve) => {
    process.stdin.setEncoding('utf8').once('data', () => resolve());
  });
  let seed = Number(id) * 7919 + 1;
  const random = (n: number) => {
    seed = (seed * 48271) % 2147483647;
    return seed % n;
  };
  const worker = async () => {
    while (more()) {
      next++;
      await app.execute(new Increment('counter'));
      await app.execute(new Transfer(`acct:${random(5)}`, `acct:${random(5)}`, 1 + random(50)));
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  writeSync(1, `done ${JSON.stringify(app.stats().store)}\n`);
  process.stdin.setEncoding('utf8').on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      if (line !== 'sync') continue;
      void app.execute(new fixtures.Put('synced', true)).then(() => {
        writeSync(1, `state ${JSON.stringify(Object.fromEntries(app.state.entries()))}\n`);
      });
    }
  });
}

main().catch((err) => {
  writeSync(2, `${(err as Error).stack}\n`);
  process.exit(1);
});
