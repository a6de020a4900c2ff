/**
 * The SQLite-WAL store's figures (issue 4), each beside raw better-sqlite3 doing the same work in
 * the same run. Alone: `node -r ./test/support/register.js bench/sqlite-wal.ts [--quick]`, or
 * `node dist/bench/sqlite-wal.js` after `npm run build`; in `npm run bench` via `benchSqliteWal`.
 */
import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import {
  replaySink,
  createApp,
  type DomainEvent,
  type EventGroup,
  type FsyncPolicy,
  type JsonValue,
  silentLogger,
} from 'appendonly';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import {
  type Account,
  accounts,
  benchContext,
  Deposit,
  type Deposited,
  depositMetadata,
  Put,
  workload,
} from './workload';
import {
  formatTable,
  type LoopDelay,
  loopDelayDuring,
  loopDelayRow,
  median,
  percentiles,
  progress,
  quick,
  type Row,
  readRounds,
  runWindow,
} from './measure';

/** Event `i` of the benchmarks: a SET of one of 10,000 keys to a small object. */
function event(i: number): DomainEvent {
  return { type: 'SET', data: { key: `key:${i % 10_000}`, value: { i, name: 'account', balance: i * 3 } } };
}

function group(i: number): EventGroup {
  return { seq: i + 1, time: 1_700_000_000_000 + i, events: [event(i)] };
}

/** The reference database: the same table, WAL, plain better-sqlite3 with prepared statements. */
function rawDatabase(file: string, synchronous: 'FULL' | 'NORMAL') {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec(
    'CREATE TABLE events (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, n INTEGER NOT NULL)',
  );
  const insert = db.prepare('INSERT INTO events (seq, time, type, data, n) VALUES (?, ?, ?, ?, ?)');
  const insertRows = db.transaction((from: number, count: number) => {
    for (let i = from; i < from + count; i++) {
      const g = group(i);
      insert.run(g.seq, g.time, g.events[0].type, JSON.stringify(g.events[0].data), 1);
    }
  });
  return { db, insertRows };
}

/** Raw better-sqlite3 on one open database: each call inserts the next `ops` rows in transactions of `perTx`; rows/s. */
function rawInserter(file: string, synchronous: 'FULL' | 'NORMAL', perTx: number) {
  const { db, insertRows } = rawDatabase(file, synchronous);
  let next = 0;
  return {
    run(ops: number): number {
      const started = process.hrtime.bigint();
      for (let i = 0; i < ops; i += perTx) insertRows(next + i, Math.min(perTx, ops - i));
      next += ops;
      return ops / (Number(process.hrtime.bigint() - started) / 1e9);
    },
    close: () => db.close(),
  };
}

/** The store, open once: each call appends the next `ops` groups with `inFlight` outstanding. */
async function storeAppender(file: string, appendfsync: FsyncPolicy, inFlight: number) {
  const store = new SqliteWalStore({ file, appendfsync, autoRewritePercentage: 0 });
  await store.open(benchContext);
  let next = 0;
  return {
    async run(ops: number) {
      const from = next;
      next += ops;
      return runWindow(ops, inFlight, (i) => store.append(group(from + i)));
    },
    close: () => store.close(),
  };
}

/**
 * Rounds per measurement. The machine is shared (other processes fsync and compute at the same
 * time), so the reference and the store run alternately in short rounds on the same open files.
 * Each side's ops/s is its total operations over its total time; the ratio is the median of the
 * rounds' ratios, so that an fsync stall that hits one side in one round does not decide it.
 */
const ROUNDS = quick ? 4 : 12;

interface Timed {
  readonly opsPerSec: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  readonly maxMs?: number;
}

/** Runs `reference(ops)` and `ours(ops)` alternately, `rounds` rounds of `total / rounds` operations each. */
async function pair(
  total: number,
  reference: (ops: number) => number,
  ours: (ops: number) => Promise<Timed>,
  rounds = ROUNDS,
): Promise<{ reference: number; ours: Timed; ratio: number }> {
  const ops = Math.ceil(total / rounds);
  let referenceSeconds = 0;
  let ourSeconds = 0;
  const ratios: number[] = [];
  const p50s: number[] = [];
  let p99 = 0;
  let max = 0;
  for (let round = 0; round < rounds; round++) {
    const referenceRate = reference(ops);
    const result = await ours(ops);
    referenceSeconds += ops / referenceRate;
    ourSeconds += ops / result.opsPerSec;
    ratios.push(result.opsPerSec / referenceRate);
    if (result.p50Ms !== undefined) p50s.push(result.p50Ms);
    p99 = Math.max(p99, result.p99Ms ?? 0);
    max = Math.max(max, result.maxMs ?? 0);
  }
  const timed: Timed = { opsPerSec: (ops * rounds) / ourSeconds };
  return {
    reference: (ops * rounds) / referenceSeconds,
    ours: p50s.length > 0 ? { ...timed, p50Ms: median(p50s), p99Ms: p99, maxMs: max } : timed,
    ratio: median(ratios),
  };
}

/** The figures of issue 4, each beside its raw better-sqlite3 reference measured in the same run. */
export async function benchSqliteWal(): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-bench-sqlite-'));
  let n = 0;
  const file = () => path.join(dir, `b${n++}.db`);
  const rows: Row[] = [];
  const cases = [
    { policy: 'always', synchronous: 'FULL', inFlight: 1, total: quick ? 1000 : 6000 },
    { policy: 'always', synchronous: 'FULL', inFlight: 64, total: quick ? 50_000 : 200_000 },
    { policy: 'everysec', synchronous: 'NORMAL', inFlight: 64, total: quick ? 100_000 : 500_000 },
  ] as const;
  try {
    for (const { policy, synchronous, inFlight, total } of cases) {
      progress(
        `sqlite-wal: ${policy}, ${inFlight} in flight, ${total} appends, against raw ${synchronous} with ${inFlight} rows/tx`,
      );
      const raw = rawInserter(file(), synchronous, inFlight);
      const store = await storeAppender(file(), policy, inFlight);
      // `always` rounds run under a loop-delay monitor each: the row beside them (issue 17).
      const delays: LoopDelay[] = [];
      const run =
        policy === 'always'
          ? async (ops: number) => {
              const { result, delay } = await loopDelayDuring(() => store.run(ops));
              delays.push(delay);
              return result;
            }
          : store.run;
      const { reference, ours, ratio } = await pair(total, raw.run, run);
      raw.close();
      await store.close();
      const ref = `raw ${synchronous} ${inFlight}/tx`;
      rows.push({
        name: `raw better-sqlite3 ${synchronous}, ${inFlight} row${inFlight > 1 ? 's' : ''}/tx`,
        opsPerSec: reference,
      });
      rows.push({
        name: `SqliteWalStore ${policy}, ${inFlight} in flight`,
        ...ours,
        reference: ref,
        ratio,
        note: `median of ${ROUNDS} paired rounds`,
      });
      if (delays.length > 0) rows.push(loopDelayRow(delays));
    }
    rows.push(...(await benchDepositReplay(file(), quick ? 100_000 : 1_000_000)));
    rows.push(...(await benchReplay(file(), quick ? 100_000 : 500_000)));
    rows.push(await benchCompaction(file(), quick ? 100_000 : 1_000_000));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/**
 * Replay of single SETs (the second line beside the Deposit rows): the store's `replay()` alone
 * applying each SET to a Map, against the fastest raw read ({@link fastestRawRead}) +
 * `JSON.parse` + `Map.set` over the same rows of the same file.
 */
async function benchReplay(file: string, total: number): Promise<Row[]> {
  progress(`sqlite-wal: replay of ${total} SET events (and the fastest raw read)`);
  const writer = new SqliteWalStore({ file, appendfsync: 'no', autoRewritePercentage: 0 });
  await writer.open(benchContext);
  await runWindow(total, 1024, (i) => writer.append(group(i)));
  await writer.close();

  // The same choice of read as the Deposit rows, with this row's decode (10,000 keys).
  const fastest = fastestRawRead(file, total, Math.min(total, 10_000), (map, data) => {
    const d = JSON.parse(data) as { key: string; value: JsonValue };
    map.set(d.key, d.value);
  });
  const raw = fastest.read;
  const ours = async () => {
    const store = new SqliteWalStore({ file, autoRewritePercentage: 0 });
    await store.open(benchContext);
    const map = new Map<string, JsonValue>();
    const started = process.hrtime.bigint();
    await store.replay(
      replaySink({
        group: ({ events }) => {
          for (let e = 0; e < events.length; e++) {
            const data = events[e].data as { key: string; value: JsonValue };
            map.set(data.key, data.value);
          }
        },
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await store.close();
    return total / seconds;
  };
  raw(); // warm the page cache and the JIT for both
  await ours();
  // Each round replays the whole table: `total` operations per round.
  const rounds = quick ? 2 : 3;
  const {
    reference: rawRate,
    ours: ourRate,
    ratio,
  } = await pair(total * rounds, raw, async () => ({ opsPerSec: await ours() }), rounds);
  return [
    {
      name: `raw better-sqlite3 ${fastest.name} + JSON.parse + Map.set, SET`,
      opsPerSec: rawRate,
      note: `the fastest measured: ${fastest.measured}`,
    },
    {
      name: 'SqliteWalStore replay (events/s)',
      opsPerSec: ourRate.opsPerSec,
      reference: `raw ${fastest.name}`,
      ratio,
      note: `median of ${rounds} paired rounds`,
    },
  ];
}

/** The columns the store's replay reads (adapters/sqlite-wal/replay.ts): the reference reads the same. */
const REPLAY_COLUMNS = 'seq, time, type, data, n, id, version, metadata';
const PAGE = 4096;

type EventRow = { seq: number; data: string };
type RawEventRow = [number, number, string, string, number, string, number, string];

/** What a raw read does with each row's data: the same decode the row's store side does. */
type Decode = (map: Map<string, unknown>, data: string) => void;

/**
 * The raw better-sqlite3 reads of a replay, each applying `decode` to every row's data and
 * checking the Map ends with `keys` keys; events/s. Which is fastest depends on the build and
 * the row size, so {@link fastestRawRead} measures them all.
 */
function rawReads(file: string, total: number, keys: number, decode: Decode): [string, () => number][] {
  const timed = (read: (db: Database.Database, map: Map<string, unknown>) => void) => () => {
    const db = new Database(file, { readonly: true });
    const map = new Map<string, unknown>();
    const started = process.hrtime.bigint();
    read(db, map);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    db.close();
    if (map.size !== keys) throw new Error(`a raw read made ${map.size} keys, not ${keys}`);
    return total / seconds;
  };
  const all = `SELECT ${REPLAY_COLUMNS} FROM events ORDER BY seq`;
  const page = `SELECT ${REPLAY_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ${PAGE}`;
  return [
    [
      '.iterate()',
      timed((db, map) => {
        for (const row of db.prepare(all).iterate()) decode(map, (row as EventRow).data);
      }),
    ],
    [
      `.all() in pages of ${PAGE}`,
      timed((db, map) => {
        const read = db.prepare(page);
        for (let last = 0; ; ) {
          const rows = read.all(last) as EventRow[];
          for (let i = 0; i < rows.length; i++) decode(map, rows[i].data);
          if (rows.length < PAGE) break;
          last = rows[rows.length - 1].seq;
        }
      }),
    ],
    [
      '.raw().iterate()',
      timed((db, map) => {
        for (const row of db.prepare(all).raw().iterate()) decode(map, (row as RawEventRow)[3]);
      }),
    ],
    [
      `.raw().all() in pages of ${PAGE}`,
      timed((db, map) => {
        const read = db.prepare(page).raw();
        for (let last = 0; ; ) {
          const rows = read.all(last) as RawEventRow[];
          for (let i = 0; i < rows.length; i++) decode(map, rows[i][3]);
          if (rows.length < PAGE) break;
          last = rows[rows.length - 1][0];
        }
      }),
    ],
  ];
}

/**
 * The fastest of {@link rawReads} on this file, by the better of two runs of each after a warm-up:
 * the reference of a replay row, and what each read measured (for the row's note).
 */
function fastestRawRead(
  file: string,
  total: number,
  keys: number,
  decode: Decode,
): { name: string; read: () => number; measured: string } {
  progress('sqlite-wal: choosing the fastest raw read');
  const candidates = rawReads(file, total, keys, decode).map(([name, read]) => {
    read(); // warm the page cache and the JIT
    // The better of two runs: one run on this shared machine can swap two reads 10 % apart.
    return { name, read, rate: Math.max(read(), read()) };
  });
  candidates.sort((a, b) => b.rate - a.rate);
  const measured = candidates.map((c) => `${c.name} ${Math.round(c.rate / 1000)}k/s`).join(', ');
  return { name: candidates[0].name, read: candidates[0].read, measured };
}

/** Accounts of the Deposit log, as the AOF's replay rows (bench/aof.ts). */
const ACCOUNTS = 100_000;

/**
 * Replay of a log of Deposited events (with metadata) over 100k accounts by the Deposit app —
 * open + replay through the `@On` projection — against the fastest raw better-sqlite3 read of
 * the same rows with the same decode, chosen by measuring each once, in alternating rounds.
 */
async function benchDepositReplay(file: string, total: number): Promise<Row[]> {
  progress(`sqlite-wal: writing ${total} Deposited events over ${ACCOUNTS} accounts`);
  const open = () =>
    createApp({
      ...accounts,
      store: new SqliteWalStore({ file, appendfsync: 'no', autoRewritePercentage: 0 }),
      logger: silentLogger,
    });
  const writer = await open();
  await runWindow(total, 64, (i) =>
    writer.execute(new Deposit(`account:${i % ACCOUNTS}`, 1 + (i % 100)), { metadata: depositMetadata(i) }),
  );
  await writer.close();

  const fastest = fastestRawRead(file, total, Math.min(total, ACCOUNTS), (map, data) => {
    const d = JSON.parse(data) as typeof Deposited.Event.data;
    map.set(d.account, { balance: d.balance, last: d.amount } satisfies Account);
  });

  const appLoad = async () => {
    const started = process.hrtime.bigint();
    const app = await open();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const keys = app.state.size;
    await app.close();
    if (keys !== Math.min(total, ACCOUNTS)) throw new Error(`the app replayed ${keys} keys`);
    return total / seconds;
  };
  const rounds = quick ? 3 : 5;
  progress(`sqlite-wal: Deposit replay, ${rounds} rounds alternating with raw ${fastest.name}`);
  const { reference, rows } = await readRounds(rounds, async () => fastest.read(), [
    ['SqliteWalStore replay, Deposit app (createApp: open + replay + @On)', appLoad],
  ]);
  return [
    {
      name: `raw better-sqlite3 ${fastest.name} + JSON.parse + Map.set, ${total} Deposited`,
      opsPerSec: reference,
      note: `the fastest measured: ${fastest.measured}`,
    },
    ...rows.map((r) => ({ ...r, reference: `raw ${fastest.name}`, note: `${r.note}; metadata` })),
  ];
}

/**
 * Compaction of `keys` keys through an App (`everysec`), while one client sends commands one at a
 * time: the latency of those commands during the compaction. The row's ops/s is keys compacted per second.
 */
async function benchCompaction(file: string, keys: number): Promise<Row> {
  progress(`sqlite-wal: loading ${keys} keys, then compaction with commands flowing`);
  const store = new SqliteWalStore({ file, appendfsync: 'everysec', autoRewritePercentage: 0 });
  const app = await createApp({ ...workload, store, logger: silentLogger });
  await runWindow(keys, 256, (i) => app.execute(new Put(`key:${i}`, { i, name: 'account', balance: i * 3 })));
  const latencies: number[] = [];
  let done = false;
  const started = process.hrtime.bigint();
  const compaction = app.compact().finally(() => {
    done = true;
  });
  for (let i = 0; !done; i++) {
    const t0 = process.hrtime.bigint();
    await app.execute(new Put(`during:${i % 1000}`, i));
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const result = await compaction;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await app.close();
  return {
    name: `compaction of ${keys.toLocaleString('en-US')} keys (keys/s), commands during it`,
    opsPerSec: result.keys / seconds,
    ...percentiles(latencies),
    note: `${latencies.length} commands during ${seconds.toFixed(1)} s; ${(result.sizeBefore / 1e6).toFixed(0)} → ${(result.sizeAfter / 1e6).toFixed(0)} MB`,
  };
}

if (require.main === module) {
  benchSqliteWal().then((rows) => process.stdout.write(`${formatTable('SQLite-WAL store', rows)}\n`));
}
