import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type App,
  createApp,
  type DomainEvent,
  type EventMetadata,
  type FsyncPolicy,
  type JsonValue,
  SET,
  silentLogger,
} from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { encodeGroup } from '../adapters/aof/record-codec';
import { crc32, readHex8 } from '../adapters/aof/crc';
import { ANNOTATION, NEED_MORE, RECORD, RespEncoder, RespScanner, utf8 } from '../adapters/aof/resp';
import {
  type Account,
  accounts,
  Deposit,
  Deposited,
  depositMetadata,
  ledger,
  Put,
  PutMany,
  Transfer,
  workload,
} from './workload';
import {
  formatTable,
  type LoopDelay,
  loopDelayDuring,
  loopDelayRow,
  percentiles,
  progress,
  quick,
  type Row,
  readRounds,
  runWindow,
} from './measure';

const KEYS = 100_000;
const names = Array.from({ length: 1_000_000 }, (_, i) => `key:${i}`);

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-bench-aof-'));
}

/** The classes an App of a row runs: the key-value conformance workload, or the Deposit one. */
type Classes = typeof workload | typeof accounts | typeof ledger;

async function open(dir: string, appendfsync: FsyncPolicy, classes: Classes = workload): Promise<App> {
  // Automatic compaction off: the rows measure the append path alone.
  const store = new AofStore({ dir, appendfsync, autoRewritePercentage: 0 });
  return createApp({ ...classes, store, logger: silentLogger });
}

/** A UUIDv7-shaped id, as the App gives each event: the envelope the reference writes is as long as the store's. */
const SAMPLE_ID = '019a0b1c-2d3e-7f40-8a51-b2c3d4e5f607';

/**
 * The bytes of one group as the store writes it, encoded with the store's own codec: its `@env`
 * record (the events' ids, and the metadata when given), the events (in MULTI … EXEC when there
 * are several), the `#CRC` line.
 */
function groupBytes(events: DomainEvent[], metadata?: EventMetadata): Buffer {
  const enc = new RespEncoder();
  const ids = events.map(() => SAMPLE_ID);
  encodeGroup(enc, { seq: 1, time: Date.now(), ids, metadata, events }, -1);
  return Buffer.from(enc.bytes());
}

/**
 * The physical limit of `always` one at a time (issue 17): a synchronous write + fdatasync of
 * `bytes`, `ops` times, on the main thread, appending to `fd` — no thread-pool hop, no promise,
 * nothing but the two system calls. Returns the seconds taken.
 */
function syncWriteFdatasync(fd: number, bytes: Buffer, ops: number): number {
  let position = fs.fstatSync(fd).size;
  const started = process.hrtime.bigint();
  for (let n = 0; n < ops; n++) {
    fs.writeSync(fd, bytes, 0, bytes.length, position);
    position += bytes.length;
    fs.fdatasyncSync(fd);
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/**
 * `always`, one command at a time, against {@link syncWriteFdatasync} of the same bytes. fsync
 * latency on a shared disk drifts by several times within seconds, so the two are measured in
 * alternating rounds and the total times compared: both see the same disk. The event loop's
 * delay is sampled during the store's rounds only (the reference blocks the loop by design):
 * what another task on the same process waits while the store syncs.
 */
async function alwaysOneAtATime(
  dir: string,
  label: string,
  total: number,
  classes: Classes,
  bytes: Buffer,
  command: (app: App, i: number) => Promise<unknown>,
): Promise<Row[]> {
  const rounds = 6;
  const per = Math.ceil(total / rounds);
  const app = await open(fs.mkdtempSync(path.join(dir, 'always-1-')), 'always', classes);
  const fd = fs.openSync(path.join(dir, `reference-${bytes.length}.aof`), 'a', 0o600);
  const delays: LoopDelay[] = [];
  let rawSeconds = 0;
  let storeSeconds = 0;
  const latencies: number[] = [];
  let i = 0;
  await command(app, i++); // the first command pays the opening of the file and the JIT
  for (let r = 0; r < rounds; r++) {
    rawSeconds += syncWriteFdatasync(fd, bytes, per);
    const { result: seconds, delay } = await loopDelayDuring(async () => {
      const t0 = process.hrtime.bigint();
      for (let n = 0; n < per; n++) {
        const t = process.hrtime.bigint();
        await command(app, i++);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
      return Number(process.hrtime.bigint() - t0) / 1e9;
    });
    storeSeconds += seconds;
    delays.push(delay);
  }
  fs.closeSync(fd);
  const placed = placement(app);
  await app.close();
  const raw = (per * rounds) / rawSeconds;
  const opsPerSec = (per * rounds) / storeSeconds;
  const reference = `sync write+fdatasync ${bytes.length} B`;
  return [
    { name: `reference: ${reference} loop, main thread`, opsPerSec: raw },
    {
      name: `AOF always, 1 in flight, ${label}`,
      opsPerSec,
      reference,
      ratio: opsPerSec / raw,
      note: `total times of ${rounds} alternating rounds; ${placed}`,
      ...percentiles(latencies),
    },
    loopDelayRow(delays),
  ];
}

/** Where an `always` store's fdatasyncs ran (the adaptive placement's switches: see `FsyncPlacement`). */
function placement(app: App): string {
  const s = app.stats().store;
  return `fsyncs ${s?.eventLoopFsyncs ?? 0} on the loop, ${s?.poolFsyncs ?? 0} in the pool, ${s?.fsyncFallBacks ?? 0} fall backs`;
}

async function appendRows(): Promise<Row[]> {
  const rows: Row[] = [];
  const syncOps = quick ? 1000 : 3000;
  const dir = tempDir();
  try {
    progress(`aof: always 1 in flight against the sync write + fdatasync loop, ${syncOps} ops each`);
    // The main row: the Deposit domain command with its metadata, as users run it.
    rows.push(
      ...(await alwaysOneAtATime(
        dir,
        'Deposit (@On, object value, metadata)',
        syncOps,
        accounts,
        groupBytes([Deposited({ account: names[12345], amount: 10, balance: 1010 })], depositMetadata(12345)),
        (app, i) => app.execute(new Deposit(names[i % KEYS], 10), { metadata: depositMetadata(i) }),
      )),
    );
    // A multi-event command: two events in one group, under the undo journal, in MULTI … EXEC.
    rows.push(
      ...(await alwaysOneAtATime(
        dir,
        'Transfer (2 events, MULTI)',
        syncOps,
        ledger,
        groupBytes(
          [
            Deposited({ account: names[12345], amount: -10, balance: 990 }),
            Deposited({ account: names[20264], amount: 10, balance: 1010 }),
          ],
          depositMetadata(12345),
        ),
        (app, i) =>
          app.execute(new Transfer(names[i % KEYS], names[(i + 7919) % KEYS], 10), {
            metadata: depositMetadata(i),
          }),
      )),
    );
    // The second line: one built-in SET per command, no metadata.
    rows.push(
      ...(await alwaysOneAtATime(
        dir,
        'single SET',
        syncOps,
        workload,
        groupBytes([SET(names[12345], 12345)]),
        (app, i) => app.execute(new Put(names[i % KEYS], i)),
      )),
    );
    {
      // The main `always` ×64 row: the Deposit domain command with its metadata, as users run it.
      const total = quick ? 100_000 : 300_000;
      const app = await open(fs.mkdtempSync(path.join(dir, 'always-64-')), 'always', accounts);
      const deposit = (i: number) =>
        app.execute(new Deposit(names[i % KEYS], 10), { metadata: depositMetadata(i) });
      progress(`aof: always, 64 in flight, Deposit, ${total} commands`);
      await runWindow(Math.min(total, 20_000), 64, deposit); // warm-up
      const { result: r, delay } = await loopDelayDuring(() => runWindow(total, 64, deposit));
      const placed = placement(app);
      await app.close();
      rows.push({
        name: 'AOF always, 64 in flight, Deposit (@On, object value, metadata)',
        ...r,
        note: placed,
      });
      rows.push(loopDelayRow([delay]));
    }
    const cases: [FsyncPolicy, number, number][] = [
      ['always', 64, quick ? 100_000 : 300_000],
      ['everysec', 1, quick ? 100_000 : 300_000],
      ['everysec', 64, quick ? 300_000 : 1_000_000],
      ['no', 64, quick ? 300_000 : 1_000_000],
    ];
    for (const [policy, inFlight, total] of cases) {
      const d = fs.mkdtempSync(path.join(dir, `${policy}-`));
      const app = await open(d, policy);
      progress(`aof: ${policy}, ${inFlight} in flight, ${total} commands`);
      await runWindow(Math.min(total, 20_000), inFlight, (i) => app.execute(new Put(names[i % KEYS], i))); // warm-up
      const { result: r, delay } = await loopDelayDuring(() =>
        runWindow(total, inFlight, (i) => app.execute(new Put(names[i % KEYS], i))),
      );
      await app.close();
      rows.push({
        name: `AOF ${policy}, ${inFlight} in flight${policy === 'always' ? ', single SET' : ''}`,
        ...r,
      });
      if (policy === 'always') rows.push(loopDelayRow([delay]));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Rounds of (reference, replay) per value kind; the median pair is reported. */
const REPLAY_ROUNDS = quick ? 3 : 5;

/**
 * Replay of `events` SETs over 100k keys: the app's start (open + replay into the state) against
 * a bare loop that reads the same events as NDJSON in 1 MiB chunks, JSON.parses each line and
 * Map.sets it — the cheapest load of the same data Node can do.
 */
async function replayRows(): Promise<Row[]> {
  // Integers (counters, amounts) and small objects.
  const integers = await replayRowsOf('integer values', (i) => i);
  const objects = await replayRowsOf('object values', (i) => ({ n: i, tag: 'x' }));
  return [...integers, ...objects];
}

async function replayRowsOf(what: string, value: (i: number) => JsonValue): Promise<Row[]> {
  const events = quick ? 200_000 : 1_000_000;
  const dir = tempDir();
  try {
    progress(`aof: writing ${events} events for replay (${what})`);
    const app = await open(dir, 'no');
    await runWindow(events, 64, (i) => app.execute(new Put(names[i % KEYS], value(i))));
    await app.close();
    const size = fs.statSync(path.join(dir, 'appendonlydir', 'appendonly.aof.1.incr.aof')).size;

    const ndjson = path.join(dir, 'events.ndjson');
    const out = fs.openSync(ndjson, 'w');
    for (let i = 0; i < events; i += 10_000) {
      let chunk = '';
      for (let j = i; j < Math.min(events, i + 10_000); j++)
        chunk += `${JSON.stringify({ key: names[j % KEYS], value: value(j) })}\n`;
      fs.writeSync(out, chunk);
    }
    fs.closeSync(out);

    progress('aof: reference NDJSON JSON.parse + Map.set loop');
    const bare = () => {
      const started = process.hrtime.bigint();
      const map = new Map<string, unknown>();
      const fd = fs.openSync(ndjson, 'r');
      const buf = Buffer.allocUnsafe(1 << 20);
      let rest = '';
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        const lines = (rest + buf.toString('utf8', 0, n)).split('\n');
        rest = lines.pop()!;
        for (const line of lines) {
          const e = JSON.parse(line) as { key: string; value: unknown };
          map.set(e.key, e.value);
        }
      }
      fs.closeSync(fd);
      return events / (Number(process.hrtime.bigint() - started) / 1e9);
    };
    progress('aof: replay through createApp, alternating with the reference');
    const timeReplay = async () => {
      const started = process.hrtime.bigint();
      const a = await open(dir, 'no');
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const keys = a.state.size;
      await a.close();
      return { opsPerSec: events / seconds, seconds, keys };
    };
    // Both are short (about a second) and the machine is shared: measured in alternating rounds,
    // each pair back to back, and the median pair reported, so that a burst of other load moves
    // one round rather than the figure.
    bare();
    await timeReplay();
    const pairs: { reference: number; ours: Awaited<ReturnType<typeof timeReplay>> }[] = [];
    for (let round = 0; round < REPLAY_ROUNDS; round++)
      pairs.push({ reference: bare(), ours: await timeReplay() });
    pairs.sort((a, b) => a.ours.opsPerSec / a.reference - b.ours.opsPerSec / b.reference);
    const { reference, ours: r } = pairs[Math.floor(pairs.length / 2)];
    const mbps = size / 1e6 / r.seconds;
    return [
      { name: `reference: NDJSON JSON.parse + Map.set, ${events} events, ${what}`, opsPerSec: reference },
      {
        name: `AOF replay (createApp), ${events} events, ${what}`,
        opsPerSec: r.opsPerSec,
        reference: 'NDJSON loop',
        ratio: r.opsPerSec / reference,
        note: `${mbps.toFixed(0)} MB/s, ${(size / 1e6).toFixed(0)} MB, ${r.keys} keys, median of ${REPLAY_ROUNDS} alternating rounds`,
      },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The physical limit of replaying a Deposit log (issue 17): one pass over the file's bytes in
 * 1 MiB reads, on the store's own RESP scanner (adapters/aof/resp.ts), checking each group's
 * `#CRC` line with the store's crc32 over the same span the store's GroupFramer checks (from the
 * group's first byte to its `#CRC` line), then `JSON.parse` of each event's data and a `Map.set`
 * of the value the projection makes. It skips what the state does not need and the store
 * decodes anyway: the `@env` record (ids, metadata) and the group framing's rules.
 */
function bareDepositReplay(file: string): { opsPerSec: number; events: number; keys: number } {
  const started = process.hrtime.bigint();
  const map = new Map<string, Account>();
  const sc = new RespScanner();
  const fd = fs.openSync(file, 'r');
  let buf = Buffer.allocUnsafe(1 << 20);
  let len = 0;
  let pos = 0;
  let groupStart = 0;
  let events = 0;
  for (;;) {
    const r = sc.scan(buf, pos, len);
    if (r === RECORD) {
      // `*2 Deposited <JSON(data)>`; the `@env` record starts with '@'.
      if (buf[sc.argStart[0]] !== 64) {
        const d = JSON.parse(utf8(buf, sc.argStart[1], sc.argEnd[1])) as typeof Deposited.Event.data;
        map.set(d.account, { balance: d.balance, last: d.amount });
        events++;
      }
    } else if (r === ANNOTATION) {
      // `#CRC:<8 hex>` closes the group; a `#TS:` line opens one, so the group began at it.
      const s = sc.argStart[0];
      if (sc.argEnd[0] - s === 12 && buf[s] === 67 && buf[s + 1] === 82 && buf[s + 2] === 67) {
        if (readHex8(buf, s + 4) !== crc32(buf, groupStart, pos)) throw new Error(`CRC mismatch at ${pos}`);
        groupStart = sc.end;
      }
    } else if (r === NEED_MORE) {
      // Keep the group being read (its CRC covers it), read on after it.
      buf.copy(buf, 0, groupStart, len);
      len -= groupStart;
      pos -= groupStart;
      groupStart = 0;
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const n = fs.readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
      continue;
    } else {
      throw new Error(`bad RESP at ${sc.errorAt}: expected ${sc.expected}`);
    }
    pos = sc.end;
  }
  fs.closeSync(fd);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { opsPerSec: events / seconds, events, keys: map.size };
}

/**
 * Replay of a log of Deposited events (with their metadata) over 100k accounts by the Deposit
 * app — open + replay through the `@On` projection, what a user's start costs — against
 * {@link bareDepositReplay} over the same file, in alternating rounds.
 */
async function depositReplayRows(): Promise<Row[]> {
  const events = quick ? 100_000 : 1_000_000;
  const dir = tempDir();
  try {
    progress(`aof: writing ${events} Deposited events over ${KEYS} accounts`);
    const app = await open(dir, 'no', accounts);
    await runWindow(events, 64, (i) =>
      app.execute(new Deposit(names[i % KEYS], 1 + (i % 100)), { metadata: depositMetadata(i) }),
    );
    await app.close();
    const file = path.join(dir, 'appendonlydir', 'appendonly.aof.1.incr.aof');
    const size = fs.statSync(file).size;
    const check = bareDepositReplay(file);
    if (check.events !== events || check.keys !== Math.min(events, KEYS))
      throw new Error(`the bare loop read ${check.events} events, ${check.keys} keys`);
    const appLoad = async () => {
      const started = process.hrtime.bigint();
      const a = await open(dir, 'no', accounts);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const keys = a.state.size;
      await a.close();
      if (keys !== check.keys) throw new Error(`the app replayed ${keys} keys`);
      return events / seconds;
    };
    const rounds = REPLAY_ROUNDS;
    progress(`aof: Deposit replay, ${rounds} rounds alternating with the bare loop`);
    const { reference, rows } = await readRounds(rounds, async () => bareDepositReplay(file).opsPerSec, [
      ['AOF replay, Deposit app (createApp: open + replay + @On)', appLoad],
    ]);
    const ref = 'bare RESP+CRC+JSON.parse+Map.set';
    return [
      {
        name: `reference: bare loop over the same bytes (RespScanner, crc32, JSON.parse, Map.set), ${events} events`,
        opsPerSec: reference,
        note: 'skips the @env record (ids, time, metadata: no parse) and the group framing rules',
      },
      ...rows.map((r) => ({
        ...r,
        reference: ref,
        note: `${r.note}; ${(size / 1e6).toFixed(0)} MB, ${check.keys} accounts, metadata`,
      })),
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Memory of a replay: a log of many events over 10 keys (the final state is tiny), replayed while
 * the heap is sampled. The growth stays a small constant whatever the log's size: the reader
 * holds one chunk and one batch, never the log.
 */
async function replayMemoryRows(): Promise<Row[]> {
  const events = quick ? 500_000 : 2_000_000;
  const dir = tempDir();
  try {
    progress(`aof: writing ${events} events over 10 keys`);
    const app = await open(dir, 'no');
    await runWindow(events, 64, (i) => app.execute(new Put(names[i % 10], i)));
    await app.close();
    const size = fs.statSync(path.join(dir, 'appendonlydir', 'appendonly.aof.1.incr.aof')).size;
    progress('aof: replaying it while sampling the heap');
    const before = process.memoryUsage().heapUsed;
    let peak = before;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().heapUsed);
    }, 5);
    const started = process.hrtime.bigint();
    const replayed = await open(dir, 'no');
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    await replayed.close();
    return [
      {
        name: `AOF replay of a ${(size / 1e6).toFixed(0)} MB log over 10 keys`,
        opsPerSec: events / seconds,
        note: `peak heap growth ${((peak - before) / 1e6).toFixed(1)} MB for ${(size / 1e6).toFixed(0)} MB of log`,
      },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Compaction of 1M keys while 8 clients keep executing commands: its duration, and their latency meanwhile. */
async function compactionRows(): Promise<Row[]> {
  const keys = quick ? 200_000 : 1_000_000;
  const dir = tempDir();
  try {
    progress(`aof: loading ${keys} keys`);
    const app = await open(dir, 'everysec');
    for (let i = 0; i < keys; i += 1000) {
      const entries: [string, number][] = [];
      for (let j = i; j < i + 1000; j++) entries.push([names[j], j]);
      await app.execute(new PutMany(entries));
    }
    progress(`aof: compacting ${keys} keys with 8 clients writing`);
    const latencies: number[] = [];
    let done = false;
    const started = process.hrtime.bigint();
    const compaction = app.compact().finally(() => {
      done = true;
    });
    await Promise.all(
      Array.from({ length: 8 }, async (_, c) => {
        for (let i = 0; !done; i++) {
          const t0 = process.hrtime.bigint();
          await app.execute(new Put(names[(c * 7919 + i) % keys], i));
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
      }),
    );
    const result = await compaction;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await app.close();
    const p = percentiles(latencies);
    return [
      {
        name: `AOF compaction of ${result.keys} keys`,
        opsPerSec: result.keys / seconds,
        note: `${seconds.toFixed(2)} s; ${latencies.length} commands during it`,
        ...p,
      },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Every AOF figure of issue 3, each with its reference measured in the same run; `only` picks sections (append, replay, memory, compaction). */
export async function benchAof(only: readonly string[] = []): Promise<{ title: string; rows: Row[] }[]> {
  const plan: [string, string, () => Promise<Row[]>][] = [
    ['append', 'AOF store: append', appendRows],
    ['replay', 'AOF store: replay of domain events (Deposit, @On)', depositReplayRows],
    ['replay', 'AOF store: replay (single SET)', replayRows],
    ['memory', 'AOF store: replay memory', replayMemoryRows],
    ['compaction', 'AOF store: compaction', compactionRows],
  ];
  const sections: { title: string; rows: Row[] }[] = [];
  for (const [key, title, run] of plan)
    if (only.length === 0 || only.includes(key)) sections.push({ title, rows: await run() });
  return sections;
}

if (require.main === module) {
  // `node dist/bench/aof.js [--quick] [append] [replay] [memory] [compaction]`
  benchAof(process.argv.slice(2).filter((a) => !a.startsWith('--'))).then((sections) => {
    for (const s of sections) process.stdout.write(`${formatTable(s.title, s.rows)}\n`);
  });
}
