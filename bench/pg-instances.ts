/**
 * The instances row of `bench/postgres.ts` alone, with the CPU it takes: `node
 * dist/bench/pg-instances.js [rounds] [seconds] [counts] [writers]` after `npm run build`. Each
 * round runs, for each writer (`app` by default; a comma list of `app` and the raw modes of
 * `bench/pg-writers.ts`, taking turns within the round), each count of processes (`1,4` by
 * default, 16 in flight each) on a new log of one throwaway cluster, and prints, per run, the
 * total commands/s, the conflicts and the extra decisions per command, the p99, and the CPU per
 * command of the Node processes (`process.cpuUsage` in each child) and of the server's processes
 * (`/proc/<pid>/stat` of the postmaster's children, sampled while they live), and how busy the
 * machine's cores were in all; at the end, per writer, the last count's ratio to its own
 * 1-process run and to the 1-instance App run of the same round (so the machine's speed changes
 * less between the two). It answers "waiting or computing?" for a change to the shared-log path
 * in a minute, where the full postgres section takes seven.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startPostgres } from '../test/support/postgres-cluster';
import { median, percentiles, spread } from './measure';
import { isRawWriterMode, RAW_WRITER_MODES } from './pg-writers';
import { createRawWriterTables, type InstanceResult, type InstanceWriter, spawnInstance } from './postgres';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** CPU ms (user + system) of each of the server's processes: the postmaster and its children. */
function serverCpu(dataDir: string): Map<number, number> {
  const out = new Map<number, number>();
  const postmaster = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const children = fs.readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8');
  for (const pid of [postmaster, ...children.trim().split(/\s+/).filter(Boolean).map(Number)]) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS);
    } catch {
      // ended between the listing and the read
    }
  }
  return out;
}

/** Samples the server's processes until the returned function is called: the CPU ms they used. */
function sampleServer(dataDir: string): () => number {
  const first = serverCpu(dataDir);
  const last = new Map(first);
  // A backend's figures vanish with it (the instances disconnect at their end): keep the last seen.
  // Every 100 ms: reading /proc of ~20 processes every 25 ms took 3 % of the 2 cores (perf).
  const timer = setInterval(() => {
    for (const [pid, ms] of serverCpu(dataDir)) last.set(pid, ms);
  }, 100);
  return () => {
    clearInterval(timer);
    let total = 0;
    for (const [pid, ms] of last) total += ms - (first.get(pid) ?? 0);
    return total;
  };
}

/** Idle and total jiffies of all cores (/proc/stat). */
function machineTicks(): { idle: number; total: number } {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return { idle: cpu[3] + cpu[4], total: cpu.reduce((a, b) => a + b, 0) };
}

async function run(
  url: string,
  dataDir: string,
  log: string,
  n: number,
  seconds: number,
  writer: InstanceWriter,
) {
  const children = Array.from({ length: n }, () => spawnInstance(url, log, seconds, writer));
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.go();
  // The server's and the machine's CPU from the end of the warm-up, as the children's own.
  await Promise.all(children.map((c) => c.measuring()));
  const server = sampleServer(dataDir);
  const m0 = machineTicks();
  const results: InstanceResult[] = await Promise.all(children.map((c) => c.result()));
  const serverMs = server();
  const m1 = machineTicks();
  await Promise.all(children.map((c) => c.exited));
  const ops = results.reduce((s, r) => s + r.ops, 0);
  return {
    rate: results.reduce((s, r) => s + r.ops / r.seconds, 0),
    p99: percentiles(results.flatMap((r) => r.latencies)).p99Ms,
    nodeUs: (results.reduce((s, r) => s + r.cpu.user + r.cpu.system, 0) / ops) | 0,
    serverUs: ((serverMs * 1000) / ops) | 0,
    busy: 1 - (m1.idle - m0.idle) / (m1.total - m0.total),
    conflicts: results.reduce((s, r) => s + r.conflicts, 0) / ops,
    extra: results.reduce((s, r) => s + r.decisions - r.ops - r.failed, 0) / ops,
    perBatch: ops / results.reduce((s, r) => s + r.batches, 0),
    heard: results.map((r) => r.notifications).join('/'),
  };
}

/** Least–most, whole numbers. */
function range(values: readonly number[]): string {
  return `${Math.round(Math.min(...values))}–${Math.round(Math.max(...values))}`;
}

/** The median of `values` and their spread. */
function summary(values: readonly number[]): string {
  return `${median(values).toFixed(2)} (${spread(values)})`;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const seconds = Number(process.argv[3] ?? 1.5);
  const counts = (process.argv[4] ?? '1,4').split(',').map(Number);
  const writers = (process.argv[5] ?? 'app').split(',').map((asked): InstanceWriter => {
    if (asked === 'app' || isRawWriterMode(asked)) return asked;
    throw new Error(
      `writer ${asked}: app (App instances) or ${RAW_WRITER_MODES.join(', ')} (raw pg writers, bench/pg-writers.ts)`,
    );
  });
  const last = counts[counts.length - 1];
  const server = await startPostgres();
  const host = new URL(server.url).searchParams.get('host');
  if (host === null)
    throw new Error('needs the throwaway cluster (unset DATABASE_URL): it reads /proc of its server');
  const dataDir = path.join(host, 'data');
  const url = await server.createDatabase();
  if (writers.some((w) => w !== 'app')) await createRawWriterTables(url);
  // rates[writer][round][count]: the writers take turns within each round, so that a drift of
  // the machine's speed (2x within minutes on a shared VM) falls on all of them alike.
  const rates = new Map(writers.map((w) => [w, [] as Map<number, number>[]]));
  const p99s = new Map(writers.map((w) => [w, [] as number[]]));
  try {
    for (let round = 0; round < rounds; round++) {
      for (const writer of writers) {
        const measured = new Map<number, number>();
        rates.get(writer)!.push(measured);
        for (const n of counts) {
          const log = `instances-${writer}-${n}-${round}`;
          const r = await run(url, dataDir, log, n, seconds, writer);
          measured.set(n, r.rate);
          if (n === last) p99s.get(writer)!.push(r.p99);
          process.stdout.write(
            `round ${round}, ${writer}, ${n} instance(s): ${Math.round(r.rate)} commands/s, p99 ${r.p99.toFixed(1)} ms, ${r.conflicts.toFixed(3)} conflicts/command, ${r.extra.toFixed(3)} extra decisions/command, ${r.perBatch.toFixed(1)} commands/batch; CPU per command: Node ${r.nodeUs} µs, server ${r.serverUs} µs; machine ${Math.round(r.busy * 100)} % busy (all processes); NOTIFYs heard ${r.heard}\n`,
          );
        }
      }
    }
    const app = rates.get('app');
    for (const writer of writers) {
      const per = rates.get(writer)!;
      const at = (k: number, n: number) => per[k].get(n) ?? Number.NaN;
      const lasts = per.map((_, k) => at(k, last));
      const own = counts.includes(1) && last !== 1 ? per.map((_, k) => at(k, last) / at(k, 1)) : [];
      const vsApp =
        app !== undefined && counts.includes(1) && writer !== 'app'
          ? per.map((_, k) => at(k, last) / (app[k].get(1) ?? Number.NaN))
          : [];
      const parts = [
        ...(own.length > 0 ? [`${last} / 1 of its own ${summary(own)}`] : []),
        ...(vsApp.length > 0 ? [`/ 1 App instance of the same round ${summary(vsApp)}`] : []),
        `${last}: ${Math.round(median(lasts))} commands/s (${range(lasts)}), p99 ${median(p99s.get(writer)!).toFixed(0)} ms (${range(p99s.get(writer)!)})`,
      ];
      process.stdout.write(`${writer}: ${parts.join('; ')}\n`);
    }
  } finally {
    await server.stop();
  }
}

void main();
