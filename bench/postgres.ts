/**
 * The PostgreSQL store's figures (issue 14, "Performance"), each beside raw `pg` doing the same
 * work in the same run. The server is a throwaway cluster of this run, made as the tests make
 * theirs (test/support/postgres-cluster.ts: initdb in a temporary folder, a Unix socket, fsync
 * on), or DATABASE_URL when it is set; stopped and removed (or its databases dropped) at the end.
 * Alone: `node dist/bench/postgres.js [appends] [instances] [replay] [--quick]` after `npm run
 * build` (some parts, or all); in `npm run bench` as the `postgres` section.
 */
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import {
  type App,
  CommandHandler,
  createApp,
  type EventGroup,
  type JsonValue,
  type ReadonlyKeyValueState,
  replaySink,
  silentLogger,
} from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import pg from 'pg';
import { type PostgresServer, startPostgres } from '../test/support/postgres-cluster';
import {
  formatTable,
  type Measured,
  measureFor,
  median,
  percentiles,
  progress,
  quick,
  type Row,
  readRounds,
  spread,
} from './measure';
import {
  isRawWriterMode,
  RAW_WRITER_ROWS,
  type RawWriterMode,
  rawWriterChild,
  rawWriterTables,
} from './pg-writers';
import { smallCatchUpRows } from './pg-follow';
import { ACCOUNTS, amountOf, dataOf, fill, names, PAGE, rawPage } from './pg-rows';
import { accounts, benchContext, Deposit, Deposited, DepositHandler } from './workload';

/** A titled group of rows (as bench/main.ts prints them). */
export interface Section {
  readonly title: string;
  readonly rows: Row[];
}

/**
 * Automatic compaction off: the rows measure the append and replay paths alone. `schema`: tables
 * of the contender's own (see {@link appendRows}); by default the store's.
 */
function storeOn(url: string, log: string, schema?: string): PostgresStore {
  return new PostgresStore({
    connectionString: url,
    log,
    appendfsync: 'always',
    autoRewritePercentage: 0,
    ...(schema === undefined ? {} : { schema }),
  });
}

function openApp(url: string, log: string, schema?: string): Promise<App> {
  return createApp({ ...accounts, store: storeOn(url, log, schema), logger: silentLogger });
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  // A connection cut (the server stopped after a failure) rejects the query under way; the
  // 'error' event it also emits must not end the process before that failure is reported.
  client.on('error', () => {});
  await client.connect();
  return client;
}

// ---------------------------------------------------------------------------------------------
// Slices: the machine is shared, and its fsync latency moves by several times within a second
// (other processes write too), so that rounds of a second or more each compared contenders
// under different disks (ratios of 0.4 to 2 between rounds, measured). The contenders of one
// table run in turn for 20 ms each instead, in a new random order every cycle: each sees the
// same disk, within a tenth of a second. Not rotated: a rotation keeps who follows whom, and a
// slice pays for what the one before it left running (a store's last NOTIFY, the server's
// backends winding down). Measured with three identical raw INSERT contenders: rotated, the one
// after a PostgresStore made 2,391 rows/s and the two after it 2,602 and 2,620; shuffled,
// 2,344, 2,282 and 2,282. The ratio is of the totals; the spread quoted is that of the ratios
// over eight consecutive stretches of the run.
// ---------------------------------------------------------------------------------------------

const SLICE_SECONDS = 0.02;
const SEGMENTS = 8;
/** A slice's latency buffer to start with (it doubles): a slice holds hundreds of operations, not 65,536. */
const SLICE_CAPACITY = 1024;
/** Time each contender runs in all (the table takes that times the number of contenders). */
const CONTENDER_SECONDS = quick ? 2 : 6;

/** One contender: `run(seconds)` runs it for about that long; `ops` counts what its row counts. */
interface Contender {
  readonly name: string;
  readonly run: (seconds: number) => Promise<Measured>;
  readonly close: () => Promise<void>;
  readonly note?: string;
}

/**
 * Runs the contenders in turn, a slice each, until each has run about `seconds`; returns each
 * one's slices, in order (see {@link rowOf} and {@link compared}).
 */
async function interleaved(
  contenders: readonly Contender[],
  seconds = CONTENDER_SECONDS,
): Promise<Measured[][]> {
  for (const c of contenders) await c.run(0.2); // JIT, connections, caches
  const cycles = Math.max(SEGMENTS, Math.round(seconds / SLICE_SECONDS));
  const slices = contenders.map(() => [] as Measured[]);
  const order = contenders.map((_, i) => i);
  for (let cycle = 0; cycle < cycles; cycle++) {
    for (let k = order.length - 1; k > 0; k--) {
      const j = Math.floor(Math.random() * (k + 1));
      [order[k], order[j]] = [order[j], order[k]];
    }
    for (const i of order) slices[i].push(await contenders[i].run(SLICE_SECONDS));
  }
  return slices;
}

function rateOf(parts: readonly Measured[]): number {
  return parts.reduce((s, m) => s + m.ops, 0) / parts.reduce((s, m) => s + m.seconds, 0);
}

/** A contender's row: its rate over all its slices, the percentiles of all their latencies. */
function rowOf(c: Contender, slices: readonly Measured[]): Row {
  const row: Row = {
    name: c.name,
    opsPerSec: rateOf(slices),
    ...percentiles(merge(slices.map((m) => m.latencies))),
  };
  return c.note === undefined ? row : { ...row, note: c.note };
}

/** `row` beside `reference` (slices of the same interleaved run): the ratio of the totals, the spread over the stretches. */
function compared(row: Row, slices: readonly Measured[], reference: readonly Measured[], name: string): Row {
  const stretch = (parts: readonly Measured[], k: number) =>
    parts.slice(Math.floor((k * parts.length) / SEGMENTS), Math.floor(((k + 1) * parts.length) / SEGMENTS));
  const ratios = Array.from(
    { length: SEGMENTS },
    (_, k) => rateOf(stretch(slices, k)) / rateOf(stretch(reference, k)),
  );
  return {
    ...row,
    reference: name,
    ratio: rateOf(slices) / rateOf(reference),
    note: `${row.note === undefined ? '' : `${row.note}; `}in 20 ms slices, ${spread(ratios)} over ${SEGMENTS} stretches`,
  };
}

function merge(parts: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** `m` with every operation counted `times` (a transaction of 64 rows counts 64 rows). */
function scaled(m: Measured, times: number): Measured {
  return { ...m, ops: m.ops * times };
}

// ---------------------------------------------------------------------------------------------
// 1–2. Appends: raw pg and the store, one instance
// ---------------------------------------------------------------------------------------------

/**
 * Tables of the store's shape (events, heads) in `schema`, for one raw row. Every contender of
 * the append tables writes its own tables, as a log alone in its table does: in an index shared
 * by several logs, all but the one whose keys sort last insert into the middle of the
 * `(log, seq)` btree, a full descent and a half-empty split each time where the last one takes
 * PostgreSQL's rightmost-leaf fast path. Measured with two identical stores on one table, 64
 * rows per append: the log sorting first made 0.89 and 0.95 of the other's rate; the App
 * contender, whose log (`app-…`) sorted before the bare store's, was the one charged for it.
 */
async function rawTables(client: pg.Client, schema: string): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${schema}.events (log text NOT NULL, seq bigint NOT NULL, time bigint NOT NULL,
       type text NOT NULL, data text NOT NULL, n integer NOT NULL, batch uuid NOT NULL, PRIMARY KEY (log, seq))`,
  );
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${schema}.heads (log text PRIMARY KEY, seq bigint NOT NULL, batch uuid)`,
  );
}

const insert1 = (s: string) =>
  `INSERT INTO ${s}.events (log, seq, time, type, data, n, batch) VALUES ($1, $2, $3, $4, $5, 1, $6)`;
const insertN = (s: string) => `INSERT INTO ${s}.events (log, seq, time, type, data, n, batch)
  SELECT $1, $2 + e.ord, e.time, e.type, e.data, 1, $6
  FROM unnest($3::bigint[], $4::text[], $5::text[]) WITH ORDINALITY AS e(time, type, data, ord)`;
/** The store's ordering by hand: the head moves from where the writer expects it, in the statement that inserts. */
const head1 = (
  s: string,
) => `WITH moved AS (UPDATE ${s}.heads SET seq = $3, batch = $4 WHERE log = $1 AND seq = $2 RETURNING seq)
  INSERT INTO ${s}.events (log, seq, time, type, data, n, batch) SELECT $1, $3, $5, $6, $7, 1, $4 FROM moved`;
const headN = (
  s: string,
) => `WITH moved AS (UPDATE ${s}.heads SET seq = $3, batch = $4 WHERE log = $1 AND seq = $2 RETURNING seq)
  INSERT INTO ${s}.events (log, seq, time, type, data, n, batch)
  SELECT $1, $2 + e.ord, e.time, e.type, e.data, 1, $4
  FROM moved, unnest($5::bigint[], $6::text[], $7::text[]) WITH ORDINALITY AS e(time, type, data, ord)`;

/** The raw rows: plain INSERTs, prepared or not, or with the head row moved by hand (prepared). */
type RawKind = 'prepared' | 'unprepared' | 'head';

/**
 * Raw pg on a connection of its own, one statement per transaction (autocommit), `rows` rows per
 * statement; the rows are those the store writes for a Deposit (its JSON made per row, as the
 * store makes it). Prepared (a named statement: parsed and planned once) unless `unprepared`:
 * the store prepares its append, and the reference is the best plain pg does.
 */
async function rawContender(url: string, rows: number, kind: RawKind): Promise<Contender> {
  const client = await connect(url);
  const schema = `raw_${kind}_${rows}`;
  await rawTables(client, schema);
  const log = `${kind}-${rows}`;
  await client.query(`INSERT INTO ${schema}.heads (log, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING`, [log]);
  const head = kind === 'head';
  const text = (rows === 1 ? (head ? head1 : insert1) : head ? headN : insertN)(schema);
  const name = kind === 'unprepared' ? undefined : `bench_${kind}_${rows}`;
  let seq = 0;
  const values = (): unknown[] => {
    const from = seq;
    seq += rows;
    if (rows === 1) {
      const data = JSON.stringify(dataOf(from));
      return head
        ? [log, from, from + 1, randomUUID(), Date.now(), 'Deposited', data]
        : [log, from + 1, Date.now(), 'Deposited', data, randomUUID()];
    }
    const times: number[] = [];
    const types: string[] = [];
    const data: string[] = [];
    const now = Date.now();
    for (let i = from; i < from + rows; i++) {
      times.push(now);
      types.push('Deposited');
      data.push(JSON.stringify(dataOf(i)));
    }
    return head
      ? [log, from, from + rows, randomUUID(), times, types, data]
      : [log, from, times, types, data, randomUUID()];
  };
  const op = async () => {
    const { rowCount } = await client.query({ name, text, values: values() });
    if (rowCount !== rows) throw new Error(`${log}: ${rowCount} rows inserted of ${rows} (the head moved?)`);
  };
  const what = { prepared: 'INSERT', unprepared: 'INSERT, unprepared', head: 'head row + INSERT' }[kind];
  return {
    name: `raw pg: ${what}, ${rows} row${rows > 1 ? 's' : ''}/tx`,
    run: async (seconds) => scaled(await measureFor(seconds, 1, op, SLICE_CAPACITY), rows),
    close: () => client.end(),
    note: kind === 'prepared' ? 'one connection, one prepared statement per transaction' : undefined,
  };
}

/** A bare PostgresStore (no App): `append` of pre-made groups, `inFlight` outstanding. */
async function storeContender(
  url: string,
  inFlight: number,
): Promise<Contender & { close(): Promise<void> }> {
  const store = storeOn(url, `store-${inFlight}`, `store_${inFlight}`);
  await store.open(benchContext);
  let seq = 0;
  const append = () => {
    const s = seq++;
    const group: EventGroup = { seq: s + 1, time: Date.now(), events: [Deposited(dataOf(s))] };
    return store.append(group);
  };
  return {
    name: `PostgresStore.append alone (no App), ${inFlight} in flight`,
    run: (seconds) => measureFor(seconds, inFlight, append, SLICE_CAPACITY),
    close: () => store.close(),
  };
}

/** The App users run: Deposit commands, decided on the state, through the `@On` projection. */
async function appContender(url: string, inFlight: number): Promise<Contender> {
  const app = await openApp(url, `app-${inFlight}`, `app_${inFlight}`);
  return {
    name: `App + PostgresStore always, ${inFlight} in flight`,
    run: (seconds) =>
      measureFor(
        seconds,
        inFlight,
        (i) => app.execute(new Deposit(names[i % ACCOUNTS], amountOf(i))),
        SLICE_CAPACITY,
      ),
    close: () => app.close(),
  };
}

/**
 * The append rows, and the peer's: every contender of one in-flight count in one interleaved
 * run, the raw rows and the store's beside raw pg, Emmett's beside the App.
 */
async function appendRows(server: PostgresServer): Promise<{ appends: Row[]; peers: Row[] }> {
  const url = await server.createDatabase();
  const appends: Row[] = [];
  const peers: Row[] = [];
  const emmett = await openEmmett(server);
  if (!('store' in emmett)) peers.push(emmett.failed);
  try {
    for (const inFlight of [1, 64]) {
      const contenders = [
        await rawContender(url, inFlight, 'prepared'),
        await rawContender(url, inFlight, 'unprepared'),
        await rawContender(url, inFlight, 'head'),
        await storeContender(url, inFlight),
        await appContender(url, inFlight),
      ];
      const app = contenders.length - 1;
      if ('store' in emmett) contenders.push(emmettContender(emmett.store, inFlight));
      progress(
        `postgres: appends, ${inFlight} in flight: ${contenders.length} contenders, ${CONTENDER_SECONDS} s each, in 20 ms slices`,
      );
      const slices = await interleaved(contenders).finally(() =>
        Promise.all(contenders.slice(0, app + 1).map((c) => c.close())),
      );
      const reference = `raw ${inFlight}/tx`;
      for (let i = 0; i <= app; i++) {
        const row = rowOf(contenders[i], slices[i]);
        appends.push(i === 0 ? row : compared(row, slices[i], slices[0], reference));
      }
      if ('store' in emmett) {
        const peer = contenders[app + 1] as Contender & { failures(): string };
        const row = compared(
          rowOf(peer, slices[app + 1]),
          slices[app + 1],
          slices[app],
          contenders[app].name,
        );
        peers.push({ ...row, note: `${row.note}${peer.failures()}` });
      }
    }
  } finally {
    if ('store' in emmett) await emmett.store.close();
  }
  return { appends, peers };
}

// ---------------------------------------------------------------------------------------------
// 3. Instances as processes on one log
// ---------------------------------------------------------------------------------------------

const INSTANCE_IN_FLIGHT = 16;
const INSTANCE_ROUNDS = quick ? 1 : 3;
const INSTANCE_SECONDS = quick ? 2 : 5;
/**
 * Seconds each instance runs the same load before it measures (all of them at once, on the run's
 * log). A process's JIT warm-up is a fixed cost: on 2 cores, TurboFan's compile threads took 18 %
 * of the instances' CPU (perf) in a 4 s window of a 4-instance run, paid once per process, so a
 * short run without warm-up charged four instances four times what it charges one. Overridable
 * (`APPENDONLY_BENCH_WARMUP`, seconds) to compare with runs measured without it.
 */
const INSTANCE_WARMUP_SECONDS = Number(process.env.APPENDONLY_BENCH_WARMUP ?? (quick ? 0.5 : 1));

/** What one instance (a child process) reports after its run. */
export interface InstanceResult {
  readonly ops: number;
  readonly seconds: number;
  readonly failed: number;
  readonly conflicts: number;
  /** Batches committed: commands per batch says how much group commit is left under contention. */
  readonly batches: number;
  readonly decisions: number;
  readonly latencies: number[];
  /** The child's CPU time during its run, µs (`process.cpuUsage`): user and system. */
  readonly cpu: { readonly user: number; readonly system: number };
  /** Its watcher's NOTIFYs received and head polls. */
  readonly notifications: number;
  readonly polls: number;
  readonly error?: string;
}

/** Handler decisions in this process: a conflict makes the App decide its commands again. */
let decisions = 0;

@CommandHandler(Deposit)
class CountedDepositHandler extends DepositHandler {
  override execute(c: Deposit, state: ReadonlyKeyValueState) {
    decisions++;
    return super.execute(c, state);
  }
}

/**
 * A child: its own App and PostgresStore on `log`; says `ready` once open, then on `go` runs
 * Deposits `INSTANCE_IN_FLIGHT` in flight for `seconds` and prints its result as one JSON line.
 */
async function instanceChild(url: string, log: string, seconds: number): Promise<void> {
  const store = storeOn(url, log);
  const app = await createApp({
    handlers: [CountedDepositHandler],
    projections: accounts.projections,
    store,
    logger: silentLogger,
  });
  fs.writeSync(1, 'ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  let failed = 0;
  let error: string | undefined;
  // Each child its own stride through the accounts, so that they write mostly different keys.
  const offset = process.pid % ACCOUNTS;
  const op = (i: number) =>
    app.execute(new Deposit(names[(offset + i) % ACCOUNTS], amountOf(i))).catch((err: unknown) => {
      failed++;
      error ??= err instanceof Error ? err.message : String(err);
    });
  if (INSTANCE_WARMUP_SECONDS > 0) await measureFor(INSTANCE_WARMUP_SECONDS, INSTANCE_IN_FLIGHT, op);
  failed = 0;
  const decided = decisions;
  const before = store.stats();
  fs.writeSync(1, 'measuring\n');
  const cpu0 = process.cpuUsage();
  const m = await measureFor(seconds, INSTANCE_IN_FLIGHT, op);
  const cpu = process.cpuUsage(cpu0);
  const after = store.stats();
  const conflicts = after.conflicts - before.conflicts;
  const batches = after.batches - before.batches;
  const notifications = after.notifications - before.notifications;
  const polls = after.polls - before.polls;
  await app.close();
  const result: InstanceResult = {
    ops: m.ops - failed,
    seconds: m.seconds,
    failed,
    conflicts,
    batches,
    decisions: decisions - decided,
    latencies: Array.from(m.latencies, (l) => Math.round(l * 1000) / 1000),
    cpu,
    notifications,
    polls,
    ...(error === undefined ? {} : { error }),
  };
  fs.writeSync(1, `${JSON.stringify(result)}\n`);
}

/** Starts an instance child; `go` starts its run, `result` is its report. */
export function spawnInstance(url: string, log: string, seconds: number, writer: InstanceWriter = 'app') {
  const child = spawn(
    process.execPath,
    [...process.execArgv, __filename, '--postgres-instance', url, log, String(seconds), writer],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  let onLine: (() => void) | null = null;
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    onLine?.();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = (test: (l: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const look = () => {
        // Whole lines only: a long result line comes in several chunks.
        const found = out.split('\n').slice(0, -1).find(test);
        if (found !== undefined) resolve(found);
      };
      onLine = look;
      look();
      void exited.then((code) => reject(new Error(`instance exited (${code}): ${err.trim().slice(-300)}`)));
    });
  return {
    ready: line((l) => l === 'ready'),
    go: () => child.stdin.end('go\n'),
    /** Its warm-up is over: it measures from now on. */
    measuring: () => line((l) => l === 'measuring'),
    result: () => line((l) => l.startsWith('{')).then((l) => JSON.parse(l) as InstanceResult),
    exited,
  };
}

/** What an instance process runs: an App, or a raw pg writer (bench/pg-writers.ts). */
export type InstanceWriter = 'app' | RawWriterMode;

/** One run of the instances rows: `n` processes at once, App instances or raw writers. */
interface InstanceRun {
  readonly n: number;
  readonly writer: InstanceWriter;
}

const INSTANCE_RUNS: readonly InstanceRun[] = [
  { n: 1, writer: 'app' },
  { n: 2, writer: 'app' },
  { n: 4, writer: 'app' },
  { n: 1, writer: 'retry' },
  { n: 4, writer: 'retry' },
  { n: 4, writer: 'lock' },
];

/** The schema of the raw writers' tables (see bench/pg-writers.ts). */
const RAW_WRITERS_SCHEMA = 'raw_writers';

/** Creates the raw writers' tables in the database of `url`. */
export async function createRawWriterTables(url: string): Promise<void> {
  const admin = await connect(url);
  for (const statement of rawWriterTables(RAW_WRITERS_SCHEMA)) await admin.query(statement);
  await admin.end();
}

async function instanceRows(server: PostgresServer): Promise<Row[]> {
  const url = await server.createDatabase();
  await createRawWriterTables(url);
  const perRun = INSTANCE_RUNS.map(() => [] as InstanceResult[][]);
  for (let round = 0; round < INSTANCE_ROUNDS; round++) {
    for (const [k, { n, writer }] of INSTANCE_RUNS.entries()) {
      progress(
        `postgres: ${n} ${writer === 'app' ? 'instance' : `raw ${writer} writer`} process(es) on one log, ${INSTANCE_SECONDS} s`,
      );
      // A new log each run: no instance replays the previous runs' commands at start.
      const log = `instances-${writer}-${n}-${round}`;
      const children = Array.from({ length: n }, () => spawnInstance(url, log, INSTANCE_SECONDS, writer));
      await Promise.all(children.map((c) => c.ready));
      for (const c of children) c.go();
      perRun[k].push(await Promise.all(children.map((c) => c.result())));
      await Promise.all(children.map((c) => c.exited));
    }
  }
  const runsOf = (n: number, writer: InstanceRun['writer']) =>
    perRun[INSTANCE_RUNS.findIndex((r) => r.n === n && r.writer === writer)];
  return INSTANCE_RUNS.map(({ n, writer }): Row => {
    const runs = runsOf(n, writer);
    const reference = runsOf(1, writer === 'app' ? 'app' : 'retry');
    const name =
      writer === 'app'
        ? `${n} instance${n > 1 ? 's' : ''} (processes), ${INSTANCE_IN_FLIGHT} in flight each: total commands/s`
        : `raw pg: ${n} writer${n > 1 ? 's' : ''} (processes), ${RAW_WRITER_ROWS} rows/append${n > 1 ? `, ${writer === 'retry' ? 'optimistic retry' : 'head lock by hand'}` : ''}: rows/s`;
    const row = instancesRow(name, runs, n === 1 ? undefined : reference);
    if (writer !== 'app' || !INSTANCE_RUNS.some((r) => r.n === n && r.writer === 'lock')) return row;
    // The App instances beside as many raw writers taking turns on the head lock as they do.
    const raw = runsOf(n, 'lock');
    const ratios = runs.map((run, r) => totalRate(run) / totalRate(raw[r]));
    return {
      ...row,
      note: `${row.note}; ${median(ratios).toFixed(2)}× raw ${n} writers, head lock (${spread(ratios)})`,
    };
  });
}

/** Commands (or rows) per second of one run, all its processes together. */
function totalRate(run: readonly InstanceResult[]): number {
  return run.reduce((s, r) => s + r.ops / r.seconds, 0);
}

/** A row of the instances table: the median run's rate, and its ratio to the reference's runs. */
function instancesRow(name: string, runs: InstanceResult[][], reference?: InstanceResult[][]): Row {
  const all = runs.flat();
  const ops = all.reduce((s, r) => s + r.ops, 0);
  const failed = all.reduce((s, r) => s + r.failed, 0);
  const conflicts = all.reduce((s, r) => s + r.conflicts, 0);
  const decided = all.reduce((s, r) => s + r.decisions, 0);
  const batches = all.reduce((s, r) => s + r.batches, 0);
  const cpu = all.reduce((s, r) => s + r.cpu.user + r.cpu.system, 0);
  const lat = percentiles(all.flatMap((r) => r.latencies));
  const what = `${(ops / batches).toFixed(1)} commands/batch, ${(conflicts / ops).toFixed(3)} conflicts/command, ${((decided - ops - failed) / ops).toFixed(3)} extra decisions/command, ${Math.round(cpu / ops)} µs Node CPU/command${failed > 0 ? `, ${failed} failed (${all.find((r) => r.error)?.error?.slice(0, 60)})` : ''}`;
  const row: Row = { name, opsPerSec: median(runs.map(totalRate)), ...lat };
  if (reference === undefined)
    return { ...row, note: `${what}; ${INSTANCE_ROUNDS} run(s) of ${INSTANCE_SECONDS} s` };
  const ratios = runs.map((run, r) => totalRate(run) / totalRate(reference[r]));
  return {
    ...row,
    reference: `1 ${name.startsWith('raw') ? 'writer' : 'instance'}`,
    ratio: median(ratios),
    note: `${what}; median of ${INSTANCE_ROUNDS} run(s) of ${INSTANCE_SECONDS} s, ${spread(ratios)}`,
  };
}

// ---------------------------------------------------------------------------------------------
// 4. Replay and follower catch-up
// ---------------------------------------------------------------------------------------------

/**
 * The reference read: {@link rawPage} pages of `count` events after `after`. Events/s,
 * connecting included (as the App's load includes its connections).
 */
async function rawRead(url: string, log: string, after: number, count: number): Promise<number> {
  const started = process.hrtime.bigint();
  const client = await connect(url);
  const map = new Map<string, JsonValue>();
  let last: number | string = after;
  let read = 0;
  for (;;) {
    const page = await rawPage(client, log, last, PAGE, map);
    read += page.count;
    last = page.last;
    if (page.count < PAGE) break;
  }
  await client.end();
  if (read !== count) throw new Error(`raw read ${read} rows of ${log}, expected ${count}`);
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** Rounds of the follower catch-up (each writes 2 × M events first, so fewer than the replay's). */
const CATCH_UP_ROUNDS = 5;

async function replayRows(server: PostgresServer): Promise<Row[]> {
  const url = await server.createDatabase();
  const events = quick ? 100_000 : 1_000_000;
  // Seven rounds: the ratio of one round moves from 0.71 to 0.96 within a run (measured, the
  // App's load against the raw read), so a median of three still moved by a tenth between runs.
  const rounds = 7;
  progress(`postgres: writing ${events} events for replay`);
  // A pool's client: the store's append helpers take a pool's connection.
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const writer = await pool.connect();
  const log = 'replay';
  const made = storeOn(url, log);
  await made.open(benchContext); // the schema and the log's head row
  await made.close();
  await fill(writer, log, 0, events);
  const appLoad = async () => {
    const started = process.hrtime.bigint();
    const app = await openApp(url, log);
    const rate = events / (Number(process.hrtime.bigint() - started) / 1e9);
    if (app.state.size !== Math.min(events, ACCOUNTS)) throw new Error(`replayed ${app.state.size} keys`);
    await app.close();
    return rate;
  };
  const storeReplay = async () => {
    const started = process.hrtime.bigint();
    const store = storeOn(url, log);
    await store.open(benchContext);
    const map = new Map<string, JsonValue>();
    await store.replay(
      replaySink({
        group: ({ events: es }) => {
          for (let e = 0; e < es.length; e++) {
            const d = es[e].data as { account: string; amount: number; balance: number };
            map.set(d.account, { balance: d.balance, last: d.amount });
          }
        },
      }),
    );
    const rate = events / (Number(process.hrtime.bigint() - started) / 1e9);
    await store.close();
    return rate;
  };
  progress(`postgres: replay of ${events} events, ${rounds} rounds against the raw keyset read`);
  const replay = await readRounds(rounds, () => rawRead(url, log, 0, events), [
    ['App load (createApp: open + replay + projection)', appLoad],
    ['PostgresStore.replay alone (no App) into a Map', storeReplay],
  ]);

  // Follower catch-up: an open App hears of M events committed at once, and applies them. The
  // reference reads M rows committed the same way just before, on a log nobody follows: both
  // are the first readers of fresh rows (the first reader of a row sets its hint bits and finds
  // it in no cache), so neither reads rows the other has just read.
  const catchUp = quick ? 100_000 : 500_000;
  const fresh = storeOn(url, 'fresh');
  await fresh.open(benchContext); // the reference log's head row
  await fresh.close();
  const follower = await openApp(url, 'follow');
  let followed = 0;
  let written = 0;
  const follow = async () => {
    await fill(writer, 'follow', followed, catchUp);
    followed += catchUp;
    const started = process.hrtime.bigint();
    await follower.sync();
    const rate = catchUp / (Number(process.hrtime.bigint() - started) / 1e9);
    if (follower.stats().durableSeq !== followed) throw new Error('the follower did not reach the head');
    return rate;
  };
  const freshRead = async () => {
    await fill(writer, 'fresh', written, catchUp);
    written += catchUp;
    return rawRead(url, 'fresh', written - catchUp, catchUp);
  };
  progress(
    `postgres: follower catch-up of ${catchUp} events, ${CATCH_UP_ROUNDS} rounds against the raw keyset read`,
  );
  // Five rounds: the reads of fresh rows spread widely on either side (25,000 to
  // 400,000 events/s within one run of seven rounds, measured), the early rounds slowest. The
  // first reader of a row sets its hint bits, dirtying its page, and the log outgrows
  // shared_buffers, so a read may have to write pages out as it goes; that depends on how far
  // the background writer got, not on the reader.
  const caughtUp = await readRounds(CATCH_UP_ROUNDS, freshRead, [
    ['follower catch-up (App.sync after M events committed at once)', follow],
  ]);
  await follower.close();
  writer.release();
  await pool.end();
  // The everyday catch-up: a few events at a time, as a follower beside busy writers reads them.
  progress('postgres: small follower catch-ups, 5 rounds against the raw keyset read');
  const small = await smallCatchUpRows(await server.createDatabase(), 5, quick ? 200 : 1000);
  const ref = `raw keyset read, ${events} events`;
  return [
    {
      name: `raw pg: keyset SELECT pages + JSON.parse + Map.set, ${events} events`,
      opsPerSec: replay.reference,
    },
    ...replay.rows.map((r) => ({ ...r, reference: ref })),
    {
      name: `raw pg: the same read of ${catchUp} events just committed at once`,
      opsPerSec: caughtUp.reference,
    },
    ...caughtUp.rows.map((r) => ({ ...r, reference: `raw read, ${catchUp} fresh events` })),
    ...small,
  ];
}

// ---------------------------------------------------------------------------------------------
// 5. The peer: Emmett's PostgreSQL event store
// ---------------------------------------------------------------------------------------------

/** Its own folder: it needs @event-driven-io/emmett 0.42, the root has 0.38 (for emmett-sqlite). */
const EMMETT_DIR = 'bench/peers/emmett-postgresql';
const EMMETT_INSTALL = `npm ci --prefix ${EMMETT_DIR}`;

interface EmmettStore {
  appendToStream(stream: string, events: { type: string; data: JsonValue }[]): Promise<unknown>;
  close(): Promise<void>;
}

/** The package's root: bench/ holds this file in the sources, dist/bench when built. */
function projectRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist')
    dir = path.dirname(dir);
  return dir;
}

function loadEmmett(): { getPostgreSQLEventStore(url: string): EmmettStore } {
  const folder = path.join(projectRoot(), EMMETT_DIR);
  const require = createRequire(path.join(folder, 'package.json'));
  try {
    return require('@event-driven-io/emmett-postgresql') as {
      getPostgreSQLEventStore(url: string): EmmettStore;
    };
  } catch (err) {
    if ((err as { code?: string }).code === 'MODULE_NOT_FOUND')
      throw new Error(`not installed: run \`${EMMETT_INSTALL}\``);
    throw err;
  }
}

const EMMETT = '@event-driven-io/emmett-postgresql 0.42 appendToStream';

/** Emmett's store on a database of its own, or the row that says why it cannot run. */
async function openEmmett(server: PostgresServer): Promise<{ store: EmmettStore } | { failed: Row }> {
  try {
    const emmett = loadEmmett();
    return { store: emmett.getPostgreSQLEventStore(await server.createDatabase()) };
  } catch (err) {
    return { failed: { name: EMMETT, opsPerSec: 0, note: `could not run: ${(err as Error).message}` } };
  }
}

/**
 * `appendToStream` of one Deposited event, `inFlight` at once. Free slots: an append takes one,
 * so that no two appends in flight share a stream (Emmett orders appends per stream, and two at
 * once on one stream would conflict); each slot has 16 streams of its own, taken in turn. Its
 * schema is created by the first append (the warm-up slice).
 */
function emmettContender(store: EmmettStore, inFlight: number): Contender & { failures(): string } {
  const free = Array.from({ length: inFlight }, (_, s) => s);
  // A peer's error is its row's note, not the end of the benchmark.
  let failed = 0;
  let first = '';
  const op = async (i: number) => {
    const slot = free.pop()!;
    try {
      await store.appendToStream(`acct-${slot + inFlight * (i % 16)}`, [
        { type: 'Deposited', data: dataOf(i) },
      ]);
    } catch (err) {
      if (failed++ === 0) first = (err as Error).message.slice(0, 80);
    } finally {
      free.push(slot);
    }
  };
  return {
    failures: () => (failed === 0 ? '' : `; ${failed} appends failed: ${first}`),
    name: `${EMMETT}, ${inFlight === 1 ? 'one at a time' : `${inFlight} concurrent streams`}`,
    run: (seconds) => measureFor(seconds, inFlight, op, SLICE_CAPACITY),
    close: () => store.close(),
    note: `${inFlight === 1 ? '' : "its default pool (pg's 10 connections); "}one transaction per append`,
  };
}

// ---------------------------------------------------------------------------------------------

/** The parts of {@link benchPostgres}, in the order they run. */
const PARTS = ['appends', 'instances', 'replay'] as const;
type Part = (typeof PARTS)[number];

/**
 * Every figure of issue 14's "Performance" part, each beside its raw-pg reference measured in the
 * same run; `only` (for `node dist/bench/postgres.js replay` and the like) runs some parts alone.
 */
export async function benchPostgres(only: readonly Part[] = PARTS): Promise<Section[]> {
  progress(process.env.DATABASE_URL ? 'postgres: on DATABASE_URL' : 'postgres: starting a throwaway cluster');
  const server = await startPostgres();
  // Ctrl-C must not leave a server behind (the cluster stops itself on a normal exit).
  const interrupted = () => {
    void server.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  try {
    const sections: Section[] = [];
    let peers: Row[] = [];
    if (only.includes('appends')) {
      const rows = await appendRows(server);
      peers = rows.peers;
      sections.push({
        title: 'PostgreSQL store: appends against raw pg (synchronous_commit on)',
        rows: rows.appends,
      });
    }
    if (only.includes('instances'))
      sections.push({
        title: 'PostgreSQL store: instances (processes) on one log',
        rows: await instanceRows(server),
      });
    if (only.includes('replay'))
      sections.push({
        title: 'PostgreSQL store: replay and follower catch-up',
        rows: await replayRows(server),
      });
    if (peers.length > 0)
      sections.push({
        title: 'PostgreSQL peers, same work (measured with the appends, in the same slices)',
        rows: peers,
      });
    return sections;
  } finally {
    process.removeListener('SIGINT', interrupted);
    await server.stop();
  }
}

const childFlag = process.argv.indexOf('--postgres-instance');
if (childFlag >= 0) {
  const [url, log, seconds, writer] = process.argv.slice(childFlag + 1);
  const child = isRawWriterMode(writer)
    ? rawWriterChild(url, RAW_WRITERS_SCHEMA, log, writer, Number(seconds), INSTANCE_WARMUP_SECONDS, names)
    : instanceChild(url, log, Number(seconds));
  child.catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
} else if (require.main === module) {
  const asked = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const unknown = asked.filter((a) => !(PARTS as readonly string[]).includes(a));
  if (unknown.length > 0) {
    process.stderr.write(`unknown part ${unknown.join(', ')}: the parts are ${PARTS.join(', ')}\n`);
    process.exit(2);
  }
  benchPostgres(asked.length > 0 ? (asked as Part[]) : PARTS).then((sections) => {
    for (const s of sections) process.stdout.write(`${formatTable(s.title, s.rows)}\n`);
  });
}
