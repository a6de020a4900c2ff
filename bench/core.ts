import 'reflect-metadata';
import { createApp, MemoryStore, silentLogger } from 'appendonly';
import { Put, workload } from './workload';
import { formatTable, progress, quick, type Row, runWindow, timeLoop } from './measure';

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
  return rows;
}

if (require.main === module) {
  benchCore().then((rows) =>
    process.stdout.write(`${formatTable('Core: bus + state + memory store', rows)}\n`),
  );
}
