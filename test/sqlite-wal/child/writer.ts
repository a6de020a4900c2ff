/**
 * A child process for the lock tests: opens an app on a SqliteWalStore and writes
 * `Put('k<i>', i)` commands, printing `ack <i>` on stdout once each is acknowledged.
 * argv: file policy mode, where mode is `hold` (open, print `ready`, wait to be killed),
 * `write N` (N commands, 16 in flight, then wait), `try` (try to open, print the error code) or
 * `until-error` (1 KB commands one at a time until one fails; then prints what a later command,
 * `app.recover()`, one more command and `close()` do, and exits).
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
  if (mode === 'until-error') {
    for (let i = 0; ; i++) {
      try {
        await app.execute(new fixtures.Put(`k${i}`, 'x'.repeat(1000)));
        process.stdout.write(`ack ${i}\n`);
      } catch (err) {
        process.stdout.write(`err ${i} ${(err as { code?: string }).code} ${(err as Error).name}\n`);
        break;
      }
    }
    const later = await app.execute(new fixtures.Put('later', 1)).catch((err: { code?: string }) => err);
    process.stdout.write(`later ${(later as { code?: string }).code}\n`);
    const recovered = await app.recover().then(
      () => 'ok',
      (err: { code?: string }) => err.code,
    );
    process.stdout.write(`recover ${recovered}\n`);
    const after = await app.execute(new fixtures.Put('after', 1)).then(
      () => 'ok',
      (err: { code?: string }) => err.code,
    );
    process.stdout.write(`after ${after}\n`);
    await app.close();
    process.stdout.write('closed\n');
    process.exit(0);
  }
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
