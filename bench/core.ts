import 'reflect-metadata';
import { createApp, MemoryStore, silentLogger, type Telemetry } from 'appendonly';
import { openTelemetry } from 'appendonly/opentelemetry';
import { Put, workload } from './workload';
import { formatTable, median, progress, quick, type Row, runWindow, timeLoop } from './measure';

/**
 * The framework's own cost: commands through the bus, the state and the memory store, against a
 * bare `Map.set` loop doing the same state change, measured in the same run.
 */
export async function benchCore(): Promise<Row[]> {
  const total = quick ? 200_000 : 1_000_000;
  const keys = 100_000;
  const names = Array.from({ length: keys }, (_, i) => `key:${i}`);
  progress(`core: bare Map.set loop, ${total} ops`);
  const map = new Map<string, number>();
  timeLoop(total, (i) => map.set(names[i % keys], i)); // warm-up
  const bare = timeLoop(total, (i) => map.set(names[i % keys], i));
  const rows: Row[] = [{ name: 'reference: bare Map.set loop', opsPerSec: bare }];
  for (const inFlight of [1, 64]) {
    progress(`core: memory store, ${inFlight} in flight, ${total} commands`);
    const app = await createApp({ ...workload, store: new MemoryStore(), logger: silentLogger });
    await runWindow(Math.min(total, 100_000), inFlight, (i) => app.execute(new Put(names[i % keys], i))); // warm-up
    const r = await runWindow(total, inFlight, (i) => app.execute(new Put(names[i % keys], i)));
    await app.close();
    rows.push({
      name: `memory store, ${inFlight} in flight`,
      ...r,
      reference: 'bare Map.set',
      ratio: r.opsPerSec / bare,
    });
  }
  rows.push(await telemetryCost(names, total));
  return rows;
}

/**
 * What `openTelemetry()` costs with `@opentelemetry/api` loaded and no SDK registered (the
 * issue's bound: 3 %): the memory store, 64 in flight, with and without it, in alternating rounds
 * so that drift hits both alike; the row is the median round pair, with the spread of the ratios.
 */
async function telemetryCost(names: readonly string[], total: number): Promise<Row> {
  const rounds = quick ? 3 : 5;
  const n = Math.floor(total / 2);
  const run = async (telemetry: Telemetry | undefined) => {
    const app = await createApp({ ...workload, store: new MemoryStore(), logger: silentLogger, telemetry });
    await runWindow(Math.min(n, 50_000), 64, (i) => app.execute(new Put(names[i % names.length], i)));
    const r = await runWindow(n, 64, (i) => app.execute(new Put(names[i % names.length], i)));
    await app.close();
    return r.opsPerSec;
  };
  const ratios: number[] = [];
  const withIt: number[] = [];
  for (let round = 0; round < rounds; round++) {
    progress(`core: openTelemetry() without an SDK, round ${round + 1} of ${rounds}`);
    const plain = await run(undefined);
    const traced = await run(openTelemetry());
    withIt.push(traced);
    ratios.push(traced / plain);
  }
  const sorted = [...ratios].sort((a, b) => a - b);
  return {
    name: 'memory store, 64 in flight, openTelemetry(), API without SDK',
    opsPerSec: median(withIt),
    reference: 'the same without telemetry',
    ratio: median(ratios),
    note: `median of ${rounds} alternating rounds; ratios ${sorted[0].toFixed(3)}–${sorted[sorted.length - 1].toFixed(3)}`,
  };
}

if (require.main === module) {
  benchCore().then((rows) =>
    process.stdout.write(`${formatTable('Core: bus + state + memory store', rows)}\n`),
  );
}
