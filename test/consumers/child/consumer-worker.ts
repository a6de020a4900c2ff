import 'reflect-metadata';
import * as fs from 'node:fs';
import { CommandHandler, createApp, type EventStore, SET, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { commandStream, readyOrFinish } from './command-stream';

/** Command `i`: one SET, or (every seventh) a command of three events. */
class Step {
  constructor(readonly i: number) {}
}

@CommandHandler(Step)
class StepHandler {
  execute(c: Step) {
    if (c.i % 7 === 0) return [SET(`a${c.i}`, c.i), SET(`b${c.i}`, c.i), SET('last', c.i)];
    return [SET('last', c.i)];
  }
}

/**
 * The process the consumer crash test kills. argv: JSON `{ kind, path, record, finish }`. It
 * runs commands without pause and the durable consumer `recorder`, whose handler appends each
 * seq it is handed to `record` and fsyncs it before it returns, so the file holds at least what
 * was handled before a SIGKILL. `R` marks each run's start in the file. With `finish`, it stops
 * the commands after a while, waits until the consumer caught up, prints `DONE <head>` and
 * closes; otherwise it prints `READY` and runs until killed.
 */
async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as {
    kind: 'aof' | 'sqlite';
    path: string;
    record: string;
    finish: boolean;
  };
  const store: EventStore =
    spec.kind === 'aof'
      ? new AofStore({ dir: spec.path, appendfsync: 'always' })
      : new SqliteWalStore({ file: spec.path, appendfsync: 'always' });
  const app = await createApp({ handlers: [StepHandler], store, logger: silentLogger });
  const fd = fs.openSync(spec.record, 'a');
  const write = (line: string) => {
    fs.writeSync(fd, `${line}\n`);
    fs.fsyncSync(fd);
  };
  write('R');
  let next = app.stats().lastSeq;
  const stop = commandStream(4, () => app.execute(new Step(next++)));
  const sub = await app.subscribe('recorder', (e) => write(String(e.seq)), { from: 'start', pageSize: 16 });
  if (!(await readyOrFinish(spec.finish, stop))) return;
  await sub.caughtUp();
  const head = app.stats().durableSeq;
  await app.close();
  process.stdout.write(`DONE ${head}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
