import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type App, type Clock, createApp, type JsonValue, silentLogger } from 'appendonly';
import { AofStore, type AofStoreOptions } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';

export const ROOT = path.resolve(__dirname, '../..');
/** The `--app` module of the tests (the conformance fixtures). */
export const APP_MODULE = path.join(__dirname, 'support/app.ts');

/** Result of one run of the bin. */
export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `appendonly` bin from the TS sources (test/support/register.js), as a child process. */
export function cli(args: readonly string[], input?: string): Run {
  const r = spawnSync(process.execPath, ['-r', './test/support/register.js', 'cli/main.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    input: input ?? '',
    env: { ...process.env, APPENDONLY_NO_PROGRESS: '1' },
  });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking this process (which may be the lock holder the child asks for its PID). */
export function cliAsync(args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', './test/support/register.js', 'cli/main.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, APPENDONLY_NO_PROGRESS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Runs the real redis-check-aof (Debian's redis-tools). */
export function redisCheckAof(args: readonly string[], input = ''): Run {
  const r = spawnSync('redis-check-aof', args, { encoding: 'utf8', input });
  if (r.error)
    throw new Error(`redis-check-aof could not run (apt-get install redis-tools): ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `AOF analyzed:` lines of an output, per file name. */
export function analyzed(out: string): Map<string, { size: number; okUpTo: number; line: number }> {
  const m = new Map<string, { size: number; okUpTo: number; line: number }>();
  for (const x of out.matchAll(
    /AOF analyzed: filename=([^,]+), size=(\d+), ok_up_to=(\d+), ok_up_to_line=(\d+)/g,
  )) {
    m.set(x[1], { size: Number(x[2]), okUpTo: Number(x[3]), line: Number(x[4]) });
  }
  return m;
}

/** A fresh folder; `cleanup()` removes it. */
export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-cli-'));
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A clock the test moves by hand (ms since the epoch). */
export function manualClock(start: number): Clock & { set(ms: number): void } {
  let t = start;
  return { now: () => t, set: (ms) => (t = ms) };
}

/** An app of the conformance fixtures on an AofStore. */
export function aofApp(options: AofStoreOptions, clock?: Clock): Promise<App> {
  return createApp({
    ...fixtures.conformanceClasses,
    store: new AofStore(options),
    logger: silentLogger,
    clock,
  });
}

/** An app of the conformance fixtures on a SqliteWalStore. */
export function sqliteApp(file: string, clock?: Clock): Promise<App> {
  return createApp({
    ...fixtures.conformanceClasses,
    store: new SqliteWalStore({ file, appendfsync: 'always' }),
    logger: silentLogger,
    clock,
  });
}

/** The state of an app as a plain object (sorted keys). */
export function stateOf(app: App): Record<string, JsonValue> {
  return Object.fromEntries([...app.state.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Replays an AOF folder with the fixtures and returns its state. */
export async function aofState(dir: string): Promise<Record<string, JsonValue>> {
  const app = await aofApp({ dir });
  try {
    return stateOf(app);
  } finally {
    await app.close();
  }
}

/** Replays a .db file with the fixtures and returns its state. */
export async function sqliteState(file: string): Promise<Record<string, JsonValue>> {
  const app = await sqliteApp(file);
  try {
    return stateOf(app);
  } finally {
    await app.close();
  }
}

export function logDir(dir: string): string {
  return path.join(dir, 'appendonlydir');
}

export function manifestOf(dir: string): string {
  return path.join(logDir(dir), 'appendonly.aof.manifest');
}

/** Names of the backup folders the tool left in `dir`. */
export function backups(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.includes('.backup-'));
}

export const { Put, PutMany, Remove, FlushAll, Count } = fixtures;

/** Every file under `dir` with its bytes (relative path → base64), to see that nothing changed. */
export function filesOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = path.join(dir, name);
    if (fs.statSync(p).isFile()) out[name] = fs.readFileSync(p).toString('base64');
  }
  return out;
}

/** A data folder with a small AOF log: a, b, FLUSHALL, c (seq 1 to 4). */
export async function smallLog(dir: string): Promise<void> {
  const app = await aofApp({ dir, appendfsync: 'always' });
  await app.execute(new Put('a', 1));
  await app.execute(new Put('b', 2));
  await app.execute(new FlushAll());
  await app.execute(new Put('c', 3));
  await app.close();
}

/** A torn command at the end of the incr file, for check --fix. */
export function tear(dir: string): void {
  fs.appendFileSync(path.join(dir, 'appendonlydir/appendonly.aof.1.incr.aof'), '*3\r\n$3\r\nSET\r\n$1\r\nx');
}

/** The commands that write a log: the name they give in their refusal, their arguments, what they need. */
export const WRITERS: readonly [string, (dir: string) => string[], (dir: string) => void][] = [
  ['check --fix', (d) => ['check', d, '--fix'], tear],
  ['strip', (d) => ['strip', d, '--type', 'FLUSHALL', '--last'], () => {}],
  ['truncate', (d) => ['truncate', d, '--to-seq', '1'], () => {}],
  ['rewrite', (d) => ['rewrite', d], () => {}],
  ['convert', (d) => ['convert', d, path.join(d, 'copy.db')], () => {}],
];
