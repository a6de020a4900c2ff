/** Helpers shared by every benchmark: timing, concurrency windows, latency percentiles, table output. */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/** One row of a benchmark table. */
export interface Row {
  readonly name: string;
  /** Operations per second. */
  readonly opsPerSec: number;
  /** What the row is compared with (another row's name), and the ratio to it. */
  readonly reference?: string;
  readonly ratio?: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly maxMs?: number;
  readonly note?: string;
}

/** Runs `op` `total` times with `inFlight` operations outstanding at once; returns ops/s and latency percentiles. */
export async function runWindow(
  total: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ opsPerSec: number; p50Ms: number; p99Ms: number; maxMs: number }> {
  const latencies = new Float64Array(total);
  let next = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < total) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      await op(i);
      latencies[i] = Number(process.hrtime.bigint() - t0) / 1e6;
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { opsPerSec: total / seconds, ...percentiles(latencies) };
}

/** p50, p99 and max of a list of latencies in ms. */
export function percentiles(latencies: Float64Array | number[]): {
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
} {
  const sorted = Float64Array.from(latencies).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted[sorted.length - 1] ?? 0 };
}

/** Times a synchronous loop; returns ops/s. */
export function timeLoop(total: number, body: (i: number) => void): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < total; i++) body(i);
  return total / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** Formats a table of rows for the terminal. */
export function formatTable(title: string, rows: readonly Row[]): string {
  const fmt = (n: number | undefined, digits = 0) =>
    n === undefined || Number.isNaN(n)
      ? ''
      : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const header = ['', 'ops/s', 'vs reference', 'p50 ms', 'p99 ms', 'max ms'];
  const body = rows.map((r) => [
    r.name,
    fmt(r.opsPerSec),
    r.ratio === undefined
      ? (r.note ?? '')
      : `${r.ratio.toFixed(2)}× ${r.reference}${r.note ? ` (${r.note})` : ''}`,
    fmt(r.p50Ms, 3),
    fmt(r.p99Ms, 3),
    fmt(r.maxMs, 2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i === 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [`\n## ${title}`, line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join(
    '\n',
  );
}

/** True when `--quick` was given: smaller sizes, for a run under two minutes. */
export const quick = process.argv.includes('--quick');

/** Prints a progress line to stderr, so the table on stdout stays clean. */
export function progress(message: string): void {
  process.stderr.write(`… ${message}\n`);
}

/**
 * Runs `op` for about `seconds` with `inFlight` operations outstanding (a time budget rather than
 * a count: an fsync-bound row and a memory row then take the same time). Latencies as runWindow.
 */
export async function runFor(
  seconds: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ opsPerSec: number; p50Ms: number; p99Ms: number; maxMs: number; ops: number }> {
  const r = await measureFor(seconds, inFlight, op);
  return { opsPerSec: r.ops / r.seconds, ops: r.ops, ...percentiles(r.latencies) };
}

/** What {@link measureFor} measured: the latencies themselves, for rows that merge several runs. */
export interface Measured {
  readonly ops: number;
  readonly seconds: number;
  /** One entry per operation, in ms. */
  readonly latencies: Float64Array;
}

/**
 * As {@link runFor}, returning the operations, the elapsed time and every latency; `capacity` is
 * the latency buffer to start with (runs of a few milliseconds need a small one).
 */
export async function measureFor(
  seconds: number,
  inFlight: number,
  op: (i: number) => Promise<unknown>,
  capacity = 1 << 16,
): Promise<Measured> {
  // A typed buffer that doubles when full, as runWindow's preallocated one: a plain array of
  // numbers measured 5–15 % fewer ops/s on the fastest rows (its growth and GC are in the loop).
  let latencies = new Float64Array(capacity);
  let done = 0;
  let next = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(Math.round(seconds * 1e9));
  let stop = false;
  const worker = async () => {
    while (!stop) {
      const i = next++;
      const t0 = process.hrtime.bigint();
      await op(i);
      const t1 = process.hrtime.bigint();
      if (done === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[done++] = Number(t1 - t0) / 1e6;
      if (t1 >= deadline) stop = true;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
  return { ops: done, seconds: elapsed, latencies: latencies.subarray(0, done) };
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** `min–max` of a list of ratios, as the notes quote them. */
export function spread(ratios: readonly number[]): string {
  return `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
}

/**
 * `rounds` rounds of the reference and each contender (events/s each, one run of the whole read
 * per round), after one unmeasured run of each (caches, JIT); a ratio per round, its median
 * quoted with the spread. The shared machine drifts: alternating puts both sides on the same
 * moments, and the median ratio lets a burst of other load move one round rather than the figure.
 */
export async function readRounds(
  rounds: number,
  reference: () => Promise<number>,
  contenders: readonly [string, () => Promise<number>][],
): Promise<{ reference: number; rows: Row[] }> {
  await reference();
  for (const [, run] of contenders) await run();
  const refs: number[] = [];
  const ours = contenders.map(() => [] as number[]);
  for (let round = 0; round < rounds; round++) {
    refs.push(await reference());
    for (const [k, [, run]] of contenders.entries()) ours[k].push(await run());
  }
  // Each run reads the same number of events: the rate of all of them is the harmonic mean.
  const mean = (rates: number[]) => rates.length / rates.reduce((s, r) => s + 1 / r, 0);
  return {
    reference: mean(refs),
    rows: contenders.map(([name], k) => {
      const ratios = ours[k].map((r, i) => r / refs[i]);
      return {
        name: `${name} (events/s)`,
        opsPerSec: mean(ours[k]),
        ratio: median(ratios),
        note: `median of ${rounds} rounds, ${spread(ratios)}`,
      };
    }),
  };
}

/** The event loop's delay during a run, in ms (see {@link loopDelayDuring}). */
export interface LoopDelay {
  readonly p99Ms: number;
  readonly maxMs: number;
}

/**
 * Runs `run` under a fresh `perf_hooks.monitorEventLoopDelay` (1 ms resolution): how long a timer
 * on the same process waited behind the run's work (issue 17 asks for it beside every `always`
 * row). Fresh each call: a monitor enabled again counts the time it was disabled as its first
 * delay (measured: a 200 ms blocking loop between two enables read as a 201 ms p99).
 */
export async function loopDelayDuring<T>(run: () => Promise<T>): Promise<{ result: T; delay: LoopDelay }> {
  const monitor = monitorEventLoopDelay({ resolution: 1 });
  monitor.enable();
  try {
    const result = await run();
    monitor.disable();
    // The histogram is in ns.
    return { result, delay: { p99Ms: monitor.percentile(99) / 1e6, maxMs: monitor.max / 1e6 } };
  } finally {
    monitor.disable();
  }
}

/**
 * The row that goes beside an `always` row: the loop's delay in the latency columns (p99, max),
 * no ops/s. `delays` are per round (ELDHistograms cannot be merged): the row gives the worst
 * round's p99 and the max of all.
 */
export function loopDelayRow(delays: readonly LoopDelay[]): Row {
  return {
    name: '  event-loop delay during it (p99, max)',
    opsPerSec: Number.NaN,
    p99Ms: Math.max(...delays.map((d) => d.p99Ms)),
    maxMs: Math.max(...delays.map((d) => d.maxMs)),
    note: `monitorEventLoopDelay, 1 ms resolution${delays.length > 1 ? `; p99 of the worst of ${delays.length} rounds` : ''}`,
  };
}
