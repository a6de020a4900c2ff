import 'reflect-metadata';
import { CommandHandler, createApp, type EventStore, SET, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { commandStream, readyOrFinish } from './command-stream';

/** Command `i`: one SET of `last`, the event the consumer reacts to. */
class Step {
  constructor(readonly i: number) {}
}

/** The reaction to the event at `seq`: one SET of `r:<seq>`. */
class React {
  constructor(readonly seq: number) {}
}

@CommandHandler(Step)
class StepHandler {
  execute(c: Step) {
    return [SET('last', c.i)];
  }
}

@CommandHandler(React)
class ReactHandler {
  execute(c: React) {
    return [SET(`r:${c.seq}`, c.seq)];
  }
}

/**
 * The process the reaction crash test kills. argv: JSON `{ kind, path, finish }`. It runs
 * commands without pause and the durable consumer `reactor`, which reacts to every SET of `last`
 * with one command. With `finish`, it stops the commands after a while, waits until the consumer
 * has handled everything (its own reactions' events too), prints `DONE <head>` and closes;
 * otherwise it prints `READY` and runs until killed.
 */
async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as { kind: 'aof' | 'sqlite'; path: string; finish: boolean };
  const store: EventStore =
    spec.kind === 'aof'
      ? new AofStore({ dir: spec.path, appendfsync: 'always' })
      : new SqliteWalStore({ file: spec.path, appendfsync: 'always' });
  const app = await createApp({ handlers: [StepHandler, ReactHandler], store, logger: silentLogger });
  let next = app.stats().lastSeq;
  const stop = commandStream(2, () => app.execute(new Step(next++)));
  const sub = await app.subscribe(
    'reactor',
    (e) => (e.type === 'SET' && (e.data as { key: string }).key === 'last' ? new React(e.seq) : undefined),
    { from: 'start', pageSize: 16 },
  );
  if (!(await readyOrFinish(spec.finish, stop))) return;
  // Its reactions append events it then handles too: done once a catch-up appended nothing.
  let head: number;
  do {
    head = app.stats().durableSeq;
    await sub.caughtUp();
  } while (app.stats().durableSeq !== head);
  await app.close();
  process.stdout.write(`DONE ${head}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
