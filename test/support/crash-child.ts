import 'reflect-metadata';
import { writeSync } from 'node:fs';
import * as path from 'node:path';
import { CommandHandler, createApp, type EventStore, silentLogger } from 'appendonly';
import { workloadEvents } from './crash-workload';

/** Command `i` of the workload. */
class Step {
  constructor(readonly i: number) {}
}

@CommandHandler(Step)
class StepHandler {
  execute(c: Step) {
    return workloadEvents(c.i);
  }
}

/**
 * The process the crash tests kill. argv: JSON `{ module, exportName, options, inFlight, compactEvery }`.
 * It runs the workload with `inFlight` commands outstanding and writes `A <i>` to stdout with a
 * synchronous write as each command is acknowledged, so every line the parent reads was an
 * acknowledgement before the kill; `C` and `D` mark a compaction it started and its end. It runs
 * until killed.
 */
async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as {
    module: string;
    exportName: string;
    options: Record<string, unknown>;
    inFlight: number;
    compactEvery: number;
  };
  const mod = (await import(path.resolve(__dirname, '../..', spec.module))) as Record<
    string,
    new (
      o: unknown,
    ) => EventStore
  >;
  const store = new mod[spec.exportName](spec.options);
  const app = await createApp({ handlers: [StepHandler], store, logger: silentLogger });
  const start = app.stats().lastSeq === 0 ? 0 : Number(app.state.get('last')) + 1;
  writeSync(1, `S ${start}\n`);
  let next = start;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (spec.compactEvery > 0 && i % spec.compactEvery === 0 && !app.stats().store?.rewriteInProgress) {
        writeSync(1, 'C\n');
        void app.compact().then(
          () => writeSync(1, 'D\n'),
          () => writeSync(1, 'D\n'),
        );
      }
      await app.execute(new Step(i));
      writeSync(1, `A ${i}\n`);
    }
  };
  await Promise.all(Array.from({ length: spec.inFlight }, worker));
}

main().catch((err: unknown) => {
  writeSync(2, `crash-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(3);
});
