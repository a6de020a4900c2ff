import { Command } from 'commander';
import {
  cpuSeconds,
  type Pinning,
  parseCpus,
  pinned,
  run,
  startFloor,
  startKvServer,
  startRedis,
  type Target,
  which,
} from './bench-targets';

/**
 * `redis-benchmark` against the kv-server and, when `redis-server` is installed, against a real
 * Redis on another loopback port with the same appendfsync (AOF on, RDB off, a fresh folder),
 * printing both and their ratio.
 *
 * The servers run in alternating rounds (the order flips every round) and each figure is the
 * median of its rounds: this machine's fsync latency moves by half within minutes, so one run of
 * each, a minute apart, compared the disk's moods more than the servers.
 *
 * Each row also gives the CPU time each server used per request (all its threads, from
 * /proc/<pid>/stat), and a reference row, `node floor`: a bare Node TCP server that answers +OK
 * to every request, with no parsing, no state and no log. It is the cost of Node's sockets
 * alone, so the rows say how much of a gap is Node and how much is the kv-server's own work.
 * `--cpus 0,1` pins every server to CPU 0 and redis-benchmark to CPU 1 (taskset), as Redis's
 * benchmark guide advises, so that the load generator does not take the server's core.
 *
 *   npm run build && node dist/examples/kv-server/bench.js [--appendfsync always,everysec]
 *     [--store aof] [-n 200000] [-c 50] [--pipeline 1,16] [--tests set,get,incr] [--warmup 20000]
 *     [--rounds 3] [--fsync event-loop|thread-pool] [--cpus 0,1] [--no-floor] [--no-redis]
 */

interface Options {
  appendfsync: string;
  store: string;
  fsync: string;
  requests: string;
  clients: string;
  pipeline: string;
  tests: string;
  warmup: string;
  rounds: string;
  cpus?: string;
  redis: boolean;
  floor: boolean;
}

/** One measurement: requests per second, and the server's CPU microseconds per request (null where /proc is missing). */
interface Figure {
  readonly rps: number;
  readonly cpu: number | null;
}

interface Row {
  readonly policy: string;
  readonly pipeline: number;
  readonly test: string;
  readonly ours: Figure;
  readonly redis: Figure | null;
  readonly floor: Figure | null;
  /** The median of the rounds' ratios (not the ratio of the medians). */
  readonly ratio: number | null;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The median of each field over rounds (a missing CPU figure in any round makes it null). */
function medianFigure(figures: readonly Figure[]): Figure {
  const cpus = figures.map((f) => f.cpu);
  return {
    rps: median(figures.map((f) => f.rps)),
    cpu: cpus.every((c): c is number => c !== null) ? median(cpus) : null,
  };
}

async function main(): Promise<void> {
  const o = new Command('kv-server-bench')
    .option('--appendfsync <list>', 'policies to compare', 'always,everysec')
    .option('--store <kind>', 'the kv-server store', 'aof')
    .option('--fsync <where>', "the kv-server's --fsync (event-loop | thread-pool | adaptive)", 'event-loop')
    .option('-n, --requests <n>', 'requests per test', '200000')
    .option('-c, --clients <n>', 'parallel connections', '50')
    .option('--pipeline <list>', 'pipeline depths (-P)', '1,16')
    .option('--tests <list>', 'redis-benchmark tests', 'set,get,incr')
    .option('--warmup <n>', 'requests per test sent first and not counted (a JIT warms up)', '20000')
    .option('--rounds <n>', 'alternating rounds per figure; the median is reported', '3')
    .option('--cpus <server,bench>', 'pin the servers to one CPU and redis-benchmark to another (taskset)')
    .option('--no-redis', 'skip the real Redis even when redis-server is installed')
    .option('--no-floor', 'skip the reference row of a bare Node server answering +OK')
    .parse()
    .opts<Options>();
  const pin = parseCpus(o.cpus);
  if (!which('redis-benchmark'))
    throw new Error('redis-benchmark is not installed (Debian: apt-get install redis-tools)');
  const withRedis = o.redis && which('redis-server');
  if (!withRedis) say('redis-server not found (or --no-redis): measuring the kv-server alone');
  const pipelines = o.pipeline.split(',').map(Number);
  const rows: Row[] = [];
  const rounds = Math.max(1, Number(o.rounds));
  for (const policy of o.appendfsync.split(',')) {
    const ours = await startKvServer(policy, o, pin);
    const targets = [ours];
    try {
      const redis = withRedis ? await startRedis(policy, pin) : null;
      if (redis) targets.push(redis);
      const floor = o.floor ? await startFloor(pin) : null;
      if (floor) targets.push(floor);
      // All get the same warm-up; it matters to a JIT, not to Redis.
      for (const t of targets) await warmUp(t, o, pin);
      for (const p of pipelines) {
        const figures = new Map<Target, Map<string, Figure>[]>(targets.map((t) => [t, []]));
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? targets : [...targets].reverse();
          for (const t of order) figures.get(t)!.push(await measure(t, o, p, pin));
        }
        const byTest = (t: Target | null, test: string): Figure[] | null =>
          t === null ? null : figures.get(t)!.map((m) => m.get(test) ?? { rps: 0, cpu: null });
        for (const test of figures.get(ours)![0].keys()) {
          const mine = byTest(ours, test)!;
          const theirs = byTest(redis, test);
          const bare = byTest(floor, test);
          rows.push({
            policy,
            pipeline: p,
            test,
            ours: medianFigure(mine),
            redis: theirs && medianFigure(theirs),
            floor: bare && medianFigure(bare),
            ratio: theirs && median(mine.map((v, i) => v.rps / theirs[i].rps)),
          });
        }
      }
    } finally {
      for (const t of targets) await t.stop();
    }
  }
  say('');
  say(
    `redis-benchmark -t ${o.tests} -n ${o.requests} -c ${o.clients} -P <pipeline>; kv-server on the ${o.store} store, fsync on the ${o.fsync}; median of ${rounds} alternating rounds${pin ? `; servers on CPU ${pin.server}, redis-benchmark on CPU ${pin.bench}` : ''}`,
  );
  say('requests/s, and in brackets the CPU time the server used per request (µs, all its threads)');
  say(
    `${pad('appendfsync', 12)}${pad('-P', 4)}${pad('test', 12)}${pad('kv-server', 20)}${pad('redis', 20)}${pad('ratio', 7)}node floor (+OK only)`,
  );
  for (const r of rows) {
    const ratio = r.ratio === null ? '' : r.ratio.toFixed(2);
    say(
      `${pad(r.policy, 12)}${pad(String(r.pipeline), 4)}${pad(r.test, 12)}${pad(figure(r.ours), 20)}${pad(figure(r.redis), 20)}${pad(ratio, 7)}${figure(r.floor)}`,
    );
  }
  for (const [policy, target] of [
    ['always', 1.0],
    ['everysec', 0.7],
  ] as const) {
    const r = rows.find((x) => x.policy === policy && x.pipeline === 1 && x.test === 'SET');
    if (r?.ratio) {
      const ratio = r.ratio;
      say(
        `target ${policy}, -c ${o.clients}, SET: ≥ ${target.toFixed(1)} × Redis → ${ratio.toFixed(2)} ${ratio >= target ? 'met' : 'NOT met'}`,
      );
    }
  }
}

function figure(f: Figure | null): string {
  if (f === null) return '-';
  return f.cpu === null ? f.rps.toFixed(0) : `${f.rps.toFixed(0)} (${f.cpu.toFixed(1)})`;
}

/** Sends `--warmup` requests of every test, not counted. */
async function warmUp(target: Target, o: Options, pin: Pinning | null): Promise<void> {
  if (Number(o.warmup) <= 0) return;
  const args = ['-p', String(target.port), '-t', o.tests, '-n', o.warmup, '-c', o.clients, '--csv'];
  await run(...pinned(pin?.bench, 'redis-benchmark', args));
}

/**
 * redis-benchmark at pipeline depth `p`, one run per test, so that the server's CPU time can be
 * told apart per test: requests/s and CPU µs per request, by test name.
 */
async function measure(
  target: Target,
  o: Options,
  p: number,
  pin: Pinning | null,
): Promise<Map<string, Figure>> {
  const results = new Map<string, Figure>();
  for (const test of o.tests.split(',')) {
    const args = [
      '-p',
      String(target.port),
      '-t',
      test,
      '-n',
      o.requests,
      '-c',
      o.clients,
      '-P',
      String(p),
      '--csv',
    ];
    const before = cpuSeconds(target.pid);
    const csv = await run(...pinned(pin?.bench, 'redis-benchmark', args));
    const after = cpuSeconds(target.pid);
    const lines = csv
      .split('\n')
      .slice(1)
      .map((line) => line.split(',').map((c) => c.replace(/"/g, '')))
      .filter((cells) => cells.length >= 2 && cells[0] !== '');
    // A test that runs several commands (ping: inline and multibulk) prints a line for each:
    // the CPU time of the run cannot be told apart between them.
    const cpu =
      before === null || after === null || lines.length !== 1
        ? null
        : ((after - before) * 1e6) / Number(o.requests);
    for (const cells of lines) {
      const f = { rps: Number(cells[1]), cpu };
      results.set(cells[0], f);
      say(`${target.name} -P ${p} ${cells[0]}: ${figure(f)} requests/s (CPU µs/request)`);
    }
  }
  return results;
}

function pad(s: string, n: number): string {
  return s.padEnd(n);
}

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`kv-server bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
