/**
 * A child process that runs the durable consumer `recorder` on a PostgreSQL log, for the
 * single-holder tests. argv: url log id record. Its handler appends `<id> <seq>` to `record`
 * (O_APPEND: lines of two holders never tear each other) and fsyncs it before it returns, so the
 * file holds at least what it handled before a SIGKILL, in the order handled. It writes no
 * commands (the test does). Lines it prints: `status <s>` on each change of `sub.stats().status`
 * (polled every 10 ms), `log <level> <message>` from the App's logger.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import { createApp, type Logger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { classes } from '../domain';

const print = (line: string) => fs.writeSync(1, `${line}\n`);

const logger: Logger = {
  info: () => {},
  warn: (m) => print(`log warn ${m.replace(/\n/g, ' ')}`),
  error: (m) => print(`log error ${m.replace(/\n/g, ' ')}`),
};

async function main(): Promise<void> {
  const [url, log, id, record] = process.argv.slice(2);
  const store = new PostgresStore({ connectionString: url, log, appendfsync: 'always' });
  const app = await createApp({ ...classes, store, logger });
  const fd = fs.openSync(record, 'a');
  const sub = await app.subscribe(
    'recorder',
    async (e) => {
      fs.writeSync(fd, `${id} ${e.seq}\n`);
      fs.fsyncSync(fd);
      // A little work per event, so that a kill lands while events are being handed.
      await new Promise((resolve) => setTimeout(resolve, 2));
    },
    { pageSize: 16, checkpointIntervalMs: 50 },
  );
  let last = '';
  const poll = () => {
    const status = sub.stats().status;
    if (status !== last) print(`status ${status}`);
    last = status;
  };
  poll();
  setInterval(poll, 10);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
