import 'reflect-metadata';
import * as fs from 'node:fs';
import { CommandHandler, createApp, type EventStore, SET, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';

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

/** The worker's argument. */
interface Spec {
  readonly kind: 'aof' | 'sqlite' | 'postgres';
  /** The folder, the `.db` file, or the connection string. */
  readonly path: string;
  /** PostgreSQL: the log's name. */
  readonly log?: string;
  readonly record: string;
  readonly finish: boolean;
}

function storeOf(spec: Spec): EventStore {
  if (spec.kind === 'aof') return new AofStore({ dir: spec.path, appendfsync: 'always' });
  if (spec.kind === 'sqlite') return new SqliteWalStore({ file: spec.path, appendfsync: 'always' });
  return new PostgresStore({ connectionString: spec.path, log: spec.log, appendfsync: 'always' });
}

/**
 * The process the consumer crash test kills. argv: JSON {@link Spec}. It runs commands without
 * pause, compacts the log one compaction after another, and runs the durable consumer
 * `recorder`, whose handler appends each seq it is handed to `record` and fsyncs it before it
 * returns, so the file holds at least what was handled before a SIGKILL. `R` marks each run's
 * start in the file. Without `finish`, it prints `READY` and runs until killed. With `finish`,
 * it runs the commands and compactions without the consumer for a while (so that the
 * consumer's stored position is behind), stops them, compacts once more and prints what that
 * compaction kept (`KEPT <events> <holder>`), then starts the consumer, waits until it caught
 * up, prints `DONE <head>` and closes.
 */
async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as Spec;
  const app = await createApp({ handlers: [StepHandler], store: storeOf(spec), logger: silentLogger });
  const fd = fs.openSync(spec.record, 'a');
  const write = (line: string) => {
    fs.writeSync(fd, `${line}\n`);
    fs.fsyncSync(fd);
  };
  write('R');
  let stop = false;
  let next = app.stats().lastSeq + 1;
  const worker = async () => {
    while (!stop) await app.execute(new Step(next++));
  };
  const compactor = async () => {
    while (!stop) {
      await app.compact();
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const subscribe = () =>
    app.subscribe('recorder', (e) => write(String(e.seq)), { from: 'start', pageSize: 16 });
  if (!spec.finish) {
    // Subscribed before the compactions start, as an app subscribes its consumers at start: a
    // consumer subscribed for the first time during a compaction may find it stale.
    await subscribe();
    for (let i = 0; i < 4; i++) void worker();
    void compactor();
    process.stdout.write('READY\n');
    return;
  }
  const workers = [...Array.from({ length: 4 }, worker), compactor()];
  await new Promise((r) => setTimeout(r, 200));
  stop = true;
  await Promise.all(workers);
  await app.compact();
  const retention = app.stats().store?.retention;
  process.stdout.write(`KEPT ${retention?.keptEvents ?? 0} ${retention?.heldBy?.name ?? '-'}\n`);
  const sub = await subscribe();
  await sub.caughtUp();
  const head = app.stats().durableSeq;
  await app.close();
  process.stdout.write(`DONE ${head}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
