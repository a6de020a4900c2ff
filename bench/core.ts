import 'reflect-metadata';
import { createApp, MemoryStore, silentLogger, type Telemetry } from 'appendonly';
import { openTelemetry } from 'appendonly/opentelemetry';
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
  rows.push(await telemetryCost(names, total));
  return rows;
}

/**
 * What `openTelemetry()` costs with `@opentelemetry/api` loaded and no SDK registered (the
 * issue's bound: 3 %): two memory-store apps open side by side, one with it, the same workload
 * (64 in flight) run on each in alternating slices of 10,000 commands (ABBA), so that GC, JIT
 * and the machine's drift fall on both alike; separate runs measured a spread of ±15 % here,
 * too wide to see 3 %. The ratio is the telemetry app's rate over the plain one's, the spread
 * that of 8 blocks of slices. The note adds the hook's own cost, timed bare.
 */
async function telemetryCost(names: readonly string[], total: number): Promise<Row> {
  const slice = 10_000;
  const slices = Math.max(16, Math.floor((quick ? total : 2 * total) / slice));
  const blocks = 8;
  const open = (telemetry: Telemetry | undefined) =>
    createApp({ ...workload, store: new MemoryStore(), logger: silentLogger, telemetry });
  const plain = await open(undefined);
  const traced = await open(openTelemetry());
  let next = 0;
  const runSlice = async (app: typeof plain) => {
    const from = next;
    next += slice;
    const r = await runWindow(slice, 64, (i) => app.execute(new Put(names[(from + i) % names.length], i)));
    return slice / r.opsPerSec;
  };
  await runSlice(plain); // warm-up, both
  await runSlice(traced);
  const seconds = { plain: new Array<number>(blocks).fill(0), traced: new Array<number>(blocks).fill(0) };
  for (let k = 0; k < slices; k++) {
    if (k % 1000 === 0) progress(`core: openTelemetry() without an SDK, ${slices} alternating slices`);
    const b = Math.floor((k * blocks) / slices);
    if (k % 2 === 0) {
      seconds.plain[b] += await runSlice(plain);
      seconds.traced[b] += await runSlice(traced);
    } else {
      seconds.traced[b] += await runSlice(traced);
      seconds.plain[b] += await runSlice(plain);
    }
  }
  await plain.close();
  await traced.close();
  const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
  const ratio = sum(seconds.plain) / sum(seconds.traced);
  const perBlock = seconds.plain.map((p, b) => p / seconds.traced[b]).sort((a, b) => a - b);
  // The hook alone: what a command pays for it when nothing is registered.
  const observer = openTelemetry();
  const calls = 10_000_000;
  let traces = 0;
  const started = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) if (observer.command?.('Put', undefined) !== undefined) traces++;
  const hookNs = Number(process.hrtime.bigint() - started) / calls;
  const commandNs = 1e9 / ((slices * slice) / sum(seconds.traced));
  return {
    name: 'memory store, 64 in flight, openTelemetry(), API without SDK',
    opsPerSec: (slices * slice) / sum(seconds.traced),
    reference: 'the same without telemetry',
    ratio,
    note: `${slices} alternating slices of ${slice}; blocks ${perBlock[0].toFixed(3)}–${perBlock[blocks - 1].toFixed(3)}; the hook ${hookNs.toFixed(1)} ns of a ${Math.round(commandNs)} ns command${traces > 0 ? ' (traced!)' : ''}`,
  };
}

if (require.main === module) {
  benchCore().then((rows) =>
    process.stdout.write(`${formatTable('Core: bus + state + memory store', rows)}\n`),
  );
}
