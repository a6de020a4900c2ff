import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import {
  type App,
  createApp,
  type EventStore,
  type FsyncPolicy,
  type JsonValue,
  MemoryStore,
  silentLogger,
} from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { accounts, Deposit, depositMetadata, Put, workload } from './workload';
import { formatTable, loopDelayDuring, loopDelayRow, progress, quick, type Row, runFor } from './measure';

/** The keys of every row: a SET sets one of 10,000 keys to a small object (about 60 bytes logged), a Deposit one of 10,000 accounts. */
const KEYS = 10_000;
const names = Array.from({ length: KEYS }, (_, i) => `key:${i}`);
const value = (i: number): JsonValue => ({ i, owner: 'account', balance: i * 3 });
const seconds = quick ? 0.6 : 2;

/** The two workloads of every store × policy: the Deposit domain command, and one built-in SET. */
const WORKLOADS: readonly {
  label: string;
  classes: typeof workload | typeof accounts;
  command: (app: App, i: number) => Promise<unknown>;
}[] = [
  {
    label: 'Deposit',
    classes: accounts,
    command: (app, i) =>
      app.execute(new Deposit(names[i % KEYS], 1 + (i % 100)), { metadata: depositMetadata(i) }),
  },
  {
    label: 'single SET',
    classes: workload,
    command: (app, i) => app.execute(new Put(names[i % KEYS], value(i))),
  },
];

function store(kind: string, dir: string, appendfsync: FsyncPolicy): EventStore {
  if (kind === 'aof') return new AofStore({ dir, appendfsync });
  if (kind === 'sqlite-wal') return new SqliteWalStore({ file: path.join(dir, 'bench.db'), appendfsync });
  return new MemoryStore();
}

/**
 * Every store × policy × 1 and 64 commands in flight × the Deposit command (an `@On` projection
 * to an object value, with `{ correlationId }` metadata) and a single SET, with latency
 * percentiles of `execute`,
 * beside the references that bound them, measured in the same run: the disk's fsync rate, its
 * write bandwidth, raw better-sqlite3, and a bare Map.
 */
export async function benchStores(): Promise<Row[]> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-bench-stores-'));
  const rows: Row[] = [];
  try {
    rows.push(...references(root));
    const fsyncRef = rows[0].opsPerSec;
    for (const kind of ['memory', 'aof', 'sqlite-wal']) {
      for (const policy of (kind === 'memory' ? ['always'] : ['always', 'everysec', 'no']) as FsyncPolicy[]) {
        for (const inFlight of [1, 64]) {
          // The main row is the Deposit domain command (issue 17: what users run); the single
          // SET of the key-value workload stays as the second line.
          for (const { label, classes, command } of WORKLOADS) {
            progress(`stores: ${kind} ${kind === 'memory' ? '' : policy}, ${inFlight} in flight, ${label}`);
            const dir = fs.mkdtempSync(path.join(root, `${kind}-`));
            const app = await createApp({
              ...classes,
              store: store(kind, dir, policy),
              logger: silentLogger,
            });
            const { result: r, delay } = await loopDelayDuring(() =>
              runFor(seconds, inFlight, (i) => command(app, i)),
            );
            await app.close();
            fs.rmSync(dir, { recursive: true, force: true });
            const name = `${kind}${kind === 'memory' ? '' : ` ${policy}`}, ${inFlight} in flight, ${label}`;
            const durable = policy === 'always' && kind !== 'memory';
            rows.push({
              name,
              ...r,
              ...(durable ? { reference: 'raw write+fdatasync', ratio: r.opsPerSec / fsyncRef } : {}),
            });
            // Beside every durable `always` row, what the event loop waited meanwhile (issue 17).
            if (durable) rows.push(loopDelayRow([delay]));
          }
        }
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

/** The reference rows: what the disk, SQLite and a Map can do with the same bytes, no framework. */
function references(root: string): Row[] {
  const line = Buffer.from(
    `*3\r\n$3\r\nSET\r\n$8\r\nkey:1234\r\n$45\r\n{"i":1234,"owner":"account","balance":3702}\r\n`,
  );
  const timeFor = (body: (i: number) => void) => {
    const started = process.hrtime.bigint();
    const budget = BigInt(Math.round(seconds * 1e9));
    let n = 0;
    while (process.hrtime.bigint() - started < budget) body(n++);
    return n / (Number(process.hrtime.bigint() - started) / 1e9);
  };
  progress('stores: references (write+fdatasync, write, better-sqlite3, Map.set)');
  const rows: Row[] = [];
  const fd = fs.openSync(path.join(root, 'raw.aof'), 'w');
  const writeAndSync = () => {
    fs.writeSync(fd, line);
    fs.fdatasyncSync(fd);
  };
  rows.push({ name: 'reference: raw write + fdatasync loop', opsPerSec: timeFor(writeAndSync) });
  rows.push({
    name: 'reference: raw sequential write, no sync',
    opsPerSec: timeFor(() => fs.writeSync(fd, line)),
  });
  fs.closeSync(fd);
  for (const [synchronous, perTx] of [
    ['FULL', 1],
    ['FULL', 64],
    ['NORMAL', 64],
  ] as const) {
    const db = new Database(path.join(root, `raw-${synchronous}-${perTx}.db`));
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous}`);
    db.exec('CREATE TABLE events (seq INTEGER PRIMARY KEY, time INTEGER, type TEXT, data TEXT)');
    const insert = db.prepare('INSERT INTO events (seq, time, type, data) VALUES (?, ?, ?, ?)');
    const batch = db.transaction((first: number) => {
      for (let k = 0; k < perTx; k++)
        insert.run(
          first + k,
          Date.now(),
          'SET',
          JSON.stringify({ key: names[(first + k) % KEYS], value: value(first + k) }),
        );
    });
    let seq = 1;
    const txPerSec = timeFor(() => {
      batch(seq);
      seq += perTx;
    });
    db.close();
    rows.push({
      name: `reference: raw better-sqlite3 ${synchronous}, ${perTx} row${perTx > 1 ? 's' : ''}/tx`,
      opsPerSec: txPerSec * perTx,
    });
  }
  const map = new Map<string, JsonValue>();
  rows.push({
    name: 'reference: bare Map.set loop',
    opsPerSec: timeFor((i) => map.set(names[i % KEYS], value(i))),
  });
  return rows;
}

if (require.main === module) {
  benchStores().then((rows) => process.stdout.write(`${formatTable('Stores × policies', rows)}\n`));
}
