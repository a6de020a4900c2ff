import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createApp,
  type EventGroup,
  type EventStore,
  KeyValueState,
  newEventId,
  silentLogger,
} from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { formatTable, progress, quick, type Row } from './measure';
import { accounts, Deposited, depositMetadata } from './workload';

/** Keys the logs cycle through: the state stays 10^5 keys whatever the log's length. */
const KEYS = 100_000;

function open(kind: string, where: string): EventStore {
  return kind === 'aof'
    ? new AofStore({ dir: where, appendfsync: 'no', autoRewritePercentage: 0 })
    : new SqliteWalStore({ file: where, appendfsync: 'no', autoRewritePercentage: 0 });
}

/**
 * What a log holds: `deposit`, the main rows, the Deposited events (object data, the command's
 * metadata) that the Deposit app's `@On` projection turns into object values, as an application
 * logs them; `set`, the second line, single SETs of object values, which replay shortcuts.
 */
type Workload = 'deposit' | 'set';

/** The `i`-th command's group of `workload`, as the App logs it (ids; metadata for a Deposit). */
function groupOf(workload: Workload, i: number, time: number): EventGroup {
  const key = `key:${i % KEYS}`;
  if (workload === 'set') {
    return {
      seq: i + 1,
      time,
      events: [{ type: 'SET', data: { key, value: { i, owner: 'account', balance: i * 3 } } }],
      ids: [newEventId(time)],
    };
  }
  const amount = 1 + (i % 100);
  return {
    seq: i + 1,
    time,
    events: [Deposited({ account: key, amount, balance: amount * (1 + Math.floor(i / KEYS)) })],
    ids: [newEventId(time)],
    metadata: depositMetadata(i),
  };
}

/** Writes `events` one-event groups of `workload` straight to a store (no app: the log is the input here, not the subject). */
async function buildLog(kind: string, where: string, workload: Workload, events: number): Promise<number> {
  const store = open(kind, where);
  const kv = new KeyValueState();
  await store.open({
    snapshots: { takeSnapshot: () => kv.takeSnapshot(0) },
    logger: silentLogger,
    clock: { now: Date.now },
  });
  const time = Date.now();
  let pending: Promise<void>[] = [];
  for (let i = 0; i < events; i++) {
    pending.push(store.append(groupOf(workload, i, time)));
    if (pending.length >= 4096) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  await store.close();
  return sizeOf(where);
}

function sizeOf(where: string): number {
  const st = fs.statSync(where);
  if (!st.isDirectory())
    return st.size + (fs.existsSync(`${where}-wal`) ? fs.statSync(`${where}-wal`).size : 0);
  let total = 0;
  for (const f of fs.readdirSync(where, { recursive: true }) as string[]) {
    const s = fs.statSync(path.join(where, f));
    if (s.isFile()) total += s.size;
  }
  return total;
}

/**
 * Replay time, rate and peak memory for logs of 10^5, 10^6 (and, in a full run, 10^7: 100× the
 * state) events per store and workload, the Deposit rows first. Each replay runs in a fresh child
 * process (createApp, the real path), so its peak RSS is its own. The rate should stay flat as
 * the log grows (linear time), and the peak RSS should follow the state (10^5 keys), not the log:
 * each row says its peak against the 10^5-event log's, whose state is as large.
 */
export async function benchReplayScaling(): Promise<Row[]> {
  const sizes = quick ? [1e5, 1e6] : [1e5, 1e6, 1e7];
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-bench-replay-'));
  const rows: Row[] = [];
  try {
    for (const workload of ['deposit', 'set'] as const) {
      for (const kind of ['aof', 'sqlite-wal']) {
        let firstRss = 0;
        for (const events of sizes) {
          const where =
            kind === 'aof' ? path.join(root, `aof-${events}`) : path.join(root, `log-${events}.db`);
          progress(`replay: building a ${kind} log of ${events.toExponential(0)} ${workload} events`);
          const bytes = await buildLog(kind, where, workload, events);
          progress('replay: replaying it in a child process');
          const child = spawnSync(
            process.execPath,
            ['--expose-gc', __filename, '--replay-child', kind, where, workload],
            {
              encoding: 'utf8',
              maxBuffer: 1 << 20,
            },
          );
          const line = child.stdout.split('\n').find((l) => l.startsWith('{'));
          if (child.status !== 0 || line === undefined)
            throw new Error(`replay child failed: ${child.stderr}`);
          const r = JSON.parse(line) as { seconds: number; keys: number; maxRssMiB: number; liveMiB: number };
          if (r.keys !== Math.min(events, KEYS)) throw new Error(`the replay made ${r.keys} keys`);
          if (firstRss === 0) firstRss = r.maxRssMiB;
          const what =
            workload === 'deposit' ? 'Deposit (@On, object values, metadata)' : 'single SET (object values)';
          rows.push({
            name: `${kind} replay, ${what}, ${events.toExponential(0)} events (${(bytes / 2 ** 20).toFixed(0)} MiB)`,
            opsPerSec: events / r.seconds,
            note: `${(bytes / 2 ** 20 / r.seconds).toFixed(0)} MB/s, ${r.seconds.toFixed(2)} s, peak RSS ${r.maxRssMiB.toFixed(0)} MiB (${(r.maxRssMiB / firstRss).toFixed(2)}× the 1e+5 log's), live heap after it ${r.liveMiB.toFixed(0)} MiB, ${r.keys} keys`,
          });
          fs.rmSync(where, { recursive: true, force: true });
          fs.rmSync(`${where}-wal`, { force: true });
        }
      }
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  return rows;
}

async function replayChild(kind: string, where: string, workload: string): Promise<void> {
  const started = process.hrtime.bigint();
  const classes = workload === 'deposit' ? accounts : {};
  const app = await createApp({ ...classes, store: open(kind, where), logger: silentLogger });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const keys = app.state.size;
  // What the replay left live (the state): a peak RSS above it is garbage V8 had not collected
  // yet, not a log held in memory (the parent runs this child with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const liveMiB = process.memoryUsage().heapUsed / 2 ** 20;
  await app.close();
  process.stdout.write(
    `${JSON.stringify({ seconds, keys, maxRssMiB: process.resourceUsage().maxRSS / 1024, liveMiB })}\n`,
  );
}

const childAt = process.argv.indexOf('--replay-child');
if (childAt >= 0) {
  replayChild(process.argv[childAt + 1], process.argv[childAt + 2], process.argv[childAt + 3]).catch(
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
} else if (require.main === module) {
  benchReplayScaling().then((rows) =>
    process.stdout.write(`${formatTable('Replay: time grows linearly, memory follows the state', rows)}\n`),
  );
}
