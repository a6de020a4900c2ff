import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Command } from 'commander';

/**
 * `redis-benchmark` against the kv-server and, when `redis-server` is installed, against a real
 * Redis on another loopback port with the same appendfsync (AOF on, RDB off, a fresh folder),
 * printing both and their ratio.
 *
 * The two run in alternating rounds (the order flips every round) and each figure is the median
 * of its rounds: this machine's fsync latency moves by half within minutes, so one run of each,
 * a minute apart, compared the disk's moods more than the servers.
 *
 *   npm run build && node dist/examples/kv-server/bench.js [--appendfsync always,everysec]
 *     [--store aof] [-n 200000] [-c 50] [--pipeline 1,16] [--tests set,get,incr] [--warmup 20000]
 *     [--rounds 3]
 */

interface Options {
  appendfsync: string;
  store: string;
  requests: string;
  clients: string;
  pipeline: string;
  tests: string;
  warmup: string;
  rounds: string;
  redis: boolean;
}

interface Row {
  readonly policy: string;
  readonly pipeline: number;
  readonly test: string;
  readonly ours: number;
  readonly redis: number | null;
  /** The median of the rounds' ratios (not the ratio of the medians). */
  readonly ratio: number | null;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function main(): Promise<void> {
  const o = new Command('kv-server-bench')
    .option('--appendfsync <list>', 'policies to compare', 'always,everysec')
    .option('--store <kind>', 'the kv-server store', 'aof')
    .option('-n, --requests <n>', 'requests per test', '200000')
    .option('-c, --clients <n>', 'parallel connections', '50')
    .option('--pipeline <list>', 'pipeline depths (-P)', '1,16')
    .option('--tests <list>', 'redis-benchmark tests', 'set,get,incr')
    .option('--warmup <n>', 'requests per test sent first and not counted (a JIT warms up)', '20000')
    .option('--rounds <n>', 'alternating rounds per figure; the median is reported', '3')
    .option('--no-redis', 'skip the real Redis even when redis-server is installed')
    .parse()
    .opts<Options>();
  if (!which('redis-benchmark'))
    throw new Error('redis-benchmark is not installed (Debian: apt-get install redis-tools)');
  const withRedis = o.redis && which('redis-server');
  if (!withRedis) say('redis-server not found (or --no-redis): measuring the kv-server alone');
  const pipelines = o.pipeline.split(',').map(Number);
  const rows: Row[] = [];
  const rounds = Math.max(1, Number(o.rounds));
  for (const policy of o.appendfsync.split(',')) {
    const targets = [await startKvServer(policy, o.store)];
    try {
      if (withRedis) targets.push(await startRedis(policy));
      // Both get the same warm-up; it matters to a JIT, not to Redis.
      for (const t of targets) await warmUp(t, o);
      for (const p of pipelines) {
        const ours: Map<string, number>[] = [];
        const redis: Map<string, number>[] = [];
        for (let round = 0; round < rounds; round++) {
          const order = round % 2 === 0 ? targets : [...targets].reverse();
          for (const t of order) (t === targets[0] ? ours : redis).push(await measure(t, o, p));
        }
        for (const key of ours[0].keys()) {
          const mine = ours.map((m) => m.get(key) ?? 0);
          const theirs = redis.map((m) => m.get(key) ?? 0);
          rows.push({
            policy,
            pipeline: p,
            test: key,
            ours: median(mine),
            redis: withRedis ? median(theirs) : null,
            ratio: withRedis ? median(mine.map((v, i) => v / theirs[i])) : null,
          });
        }
      }
    } finally {
      for (const t of targets) await t.stop();
    }
  }
  say('');
  say(
    `redis-benchmark -t ${o.tests} -n ${o.requests} -c ${o.clients} -P <pipeline>; kv-server on the ${o.store} store; median of ${rounds} alternating rounds`,
  );
  say(
    `${pad('appendfsync', 12)}${pad('-P', 4)}${pad('test', 6)}${pad('kv-server/s', 14)}${pad('redis/s', 14)}ratio`,
  );
  for (const r of rows) {
    const ratio = r.ratio === null ? '' : r.ratio.toFixed(2);
    say(
      `${pad(r.policy, 12)}${pad(String(r.pipeline), 4)}${pad(r.test, 6)}${pad(r.ours.toFixed(0), 14)}${pad(r.redis?.toFixed(0) ?? '-', 14)}${ratio}`,
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

/** A server under test: its port, and how to stop it (and remove its data). */
interface Target {
  readonly name: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** Sends `--warmup` requests of every test, not counted. */
async function warmUp(target: Target, o: Options): Promise<void> {
  if (Number(o.warmup) <= 0) return;
  await run('redis-benchmark', ['-p', String(target.port), '-t', o.tests, '-n', o.warmup, '-c', o.clients, '--csv']);
}

/** One redis-benchmark run of every test at pipeline depth `p`: requests/s by test name. */
async function measure(target: Target, o: Options, p: number): Promise<Map<string, number>> {
  const results = new Map<string, number>();
  const csv = await run('redis-benchmark', [
    '-p',
    String(target.port),
    '-t',
    o.tests,
    '-n',
    o.requests,
    '-c',
    o.clients,
    '-P',
    String(p),
    '--csv',
  ]);
  for (const line of csv.split('\n').slice(1)) {
    const cells = line.split(',').map((c) => c.replace(/"/g, ''));
    if (cells.length < 2 || cells[0] === '') continue;
    results.set(cells[0], Number(cells[1]));
    say(`${target.name} -P ${p} ${cells[0]}: ${Number(cells[1]).toFixed(0)} requests/s`);
  }
  return results;
}

async function startKvServer(policy: string, store: string): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kv-bench-'));
  const port = await freePort();
  // Run next to this file: compiled (dist/…/main.js), or from the sources through the test hook.
  const compiled = __filename.endsWith('.js');
  const main = path.join(__dirname, compiled ? 'main.js' : 'main.ts');
  const hook = compiled ? [] : ['-r', path.resolve(__dirname, '../../test/support/register.js')];
  const child = spawn(
    process.execPath,
    [...hook, main, '--port', String(port), '--dir', dir, '--appendfsync', policy, '--store', store],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await waitForLine(child, /Ready to accept connections/);
  return {
    name: `kv-server (${store}, ${policy})`,
    port,
    stop: async () => {
      await stopChild(child, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startRedis(policy: string): Promise<Target> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redis-bench-'));
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      policy,
      '--dir',
      dir,
      '--daemonize',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await waitForLine(child, /Ready to accept connections/);
  return {
    name: `redis (${policy})`,
    port,
    stop: async () => {
      // SHUTDOWN NOSAVE through redis-cli; the signal is the fallback if it does not go down.
      await run('redis-cli', ['-p', String(port), 'shutdown', 'nosave']).catch(() => '');
      await stopChild(child, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not start: ${out}`));
    }, 120_000);
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited (${code}): ${out}`)));
  });
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill(signal);
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${cmd}: ${stderr || err.message}`)) : resolve(stdout),
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
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
