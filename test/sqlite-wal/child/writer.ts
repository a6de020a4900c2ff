/**
 * A child process for the lock tests: opens an app on a SqliteWalStore and writes
 * `Put('k<i>', i)` commands, printing `ack <i>` on stdout once each is acknowledged.
 * argv: file policy mode, where mode is `hold` (open, print `ready`, wait to be killed),
 * `write N` (N commands, 16 in flight, then wait) or `try` (try to open, print the error code).
 */
import 'reflect-metadata';
import { createApp, silentLogger } from 'appendonly';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import type { FsyncPolicy } from 'appendonly';

async function main(): Promise<void> {
  const [file, policy, mode, count] = process.argv.slice(2);
  const store = new SqliteWalStore({ file, appendfsync: policy as FsyncPolicy });
  if (mode === 'try') {
    try {
      await createApp({ ...fixtures.conformanceClasses, store, logger: silentLogger });
      process.stdout.write('opened\n');
    } catch (err) {
      process.stdout.write(`refused ${(err as { code?: string }).code} ${(err as Error).message}\n`);
    }
    process.exit(0);
  }
  const app = await createApp({ ...fixtures.conformanceClasses, store, logger: silentLogger });
  process.stdout.write('ready\n');
  if (mode === 'write') {
    const total = Number(count);
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const i = next++;
        await app.execute(new fixtures.Put(`k${i}`, i));
        process.stdout.write(`ack ${i}\n`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    process.stdout.write('done\n');
  }
  setInterval(() => {}, 1 << 30);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
