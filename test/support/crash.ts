import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { createApp, type EventStore, type JsonValue, silentLogger } from 'appendonly';
import { modelState } from './crash-workload';

const root = path.resolve(__dirname, '../..');

/** The store a crash test kills: a module of the repo, its export, and constructor options (JSON). */
export interface CrashTarget {
  /** Path from the repo root, e.g. `adapters/aof/index.ts`. */
  readonly module: string;
  readonly exportName: string;
  readonly options: Record<string, unknown>;
}

/** What one kill showed. */
export interface CrashRound {
  /** The number of commands the child had acknowledged before it was killed (they are 0..acked-1 of the round). */
  readonly acked: number;
  /** The first command number of the round (the child resumes after what the log holds). */
  readonly start: number;
  /** Commands found in the log after the kill: a prefix of what was sent, covering every acknowledgement. */
  readonly recovered: number;
  /** True when the kill landed while a compaction the child started was running. */
  readonly duringCompaction: boolean;
}

/**
 * Starts the workload in a child process, lets it run `runMs`, kills it with SIGKILL, reopens
 * the store here and checks the promise of the acknowledgement promise: every acknowledged command is in the
 * state, and the state is exactly the model's state after some prefix of the commands sent (no
 * command half applied). Throws with a clear message when not.
 */
export async function crashOnce(
  target: CrashTarget,
  open: () => EventStore,
  { runMs, inFlight = 64, compactEvery = 0 }: { runMs: number; inFlight?: number; compactEvery?: number },
): Promise<CrashRound> {
  const child = spawn(
    process.execPath,
    [
      '-r',
      path.join(root, 'test/support/register.js'),
      path.join(root, 'test/support/crash-child.ts'),
      JSON.stringify({ ...target, inFlight, compactEvery }),
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Start the clock only once the child has replayed and started: the S line.
  const startDeadline = Date.now() + 30_000;
  while (!out.includes('\n') && child.exitCode === null && Date.now() < startDeadline) await sleep(5);
  await sleep(runMs);
  child.kill('SIGKILL');
  const code = await exited;
  if (code !== null && code !== 0)
    throw new Error(`the crash child failed before the kill (exit ${code}): ${err}`);
  const lines = out.split('\n');
  const startLine = lines.find((l) => l.startsWith('S '));
  if (startLine === undefined) throw new Error(`the crash child never started: ${err}`);
  const start = Number(startLine.slice(2));
  let maxAcked = start - 1;
  for (const line of lines) if (line.startsWith('A ')) maxAcked = Math.max(maxAcked, Number(line.slice(2)));

  const app = await createApp({ store: open(), logger: silentLogger });
  const state = Object.fromEntries(app.state.entries()) as Record<string, JsonValue>;
  await app.close();
  const last = state.last === undefined ? -1 : Number(state.last);
  if (last < maxAcked) {
    throw new Error(
      `lost acknowledged commands: command ${maxAcked} was acknowledged, the log ends at ${last}`,
    );
  }
  const expected = modelState(last + 1);
  const keys = new Set([...Object.keys(expected), ...Object.keys(state)]);
  for (const key of keys) {
    if (JSON.stringify(state[key]) !== JSON.stringify(expected[key])) {
      throw new Error(
        `the state is not the model's after ${last + 1} commands: key ${key} is ${JSON.stringify(state[key])}, expected ${JSON.stringify(expected[key])}`,
      );
    }
  }
  const duringCompaction = lines.lastIndexOf('C') > lines.lastIndexOf('D');
  return { acked: maxAcked - start + 1, start, recovered: last + 1, duringCompaction };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Kills the workload `rounds` times at random moments (each round runs 20 ms to `maxRunMs`),
 * checking after every kill (see {@link crashOnce}). Returns the rounds, for the test's report.
 */
export async function crashLoop(
  target: CrashTarget,
  open: () => EventStore,
  {
    rounds,
    maxRunMs = 300,
    inFlight = 64,
    compactEvery = 0,
  }: { rounds: number; maxRunMs?: number; inFlight?: number; compactEvery?: number },
): Promise<CrashRound[]> {
  const results: CrashRound[] = [];
  for (let k = 0; k < rounds; k++) {
    const runMs = 20 + Math.floor(Math.random() * (maxRunMs - 20));
    results.push(await crashOnce(target, open, { runMs, inFlight, compactEvery }));
  }
  return results;
}
