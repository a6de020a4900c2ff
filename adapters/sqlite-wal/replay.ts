import type { SqliteDatabase } from './driver';
import type { ReplayRecord } from '../../src/store/replay-batch';
import { RowGrouper } from '../../src/store/row-envelope';
import {
  CorruptLogError,
  type DomainEvent,
  type JsonValue,
  LogCompactedError,
  type Logger,
} from '../../src/index';

/**
 * Rows per read. Each batch is one `.raw().all()` on a primary-key range (`seq > last LIMIT n`):
 * one call into SQLite per batch instead of one per row as `.iterate()` costs, while memory stays
 * bounded by the batch, never the table.
 */
const BATCH = 2048;

type EventRow = [
  seq: number,
  time: number,
  type: string,
  data: string,
  n: number,
  id: string | null,
  version: number | null,
  metadata: string | null,
];
type EntryRow = [rowid: number, key: string, value: string];

/** Counts the rows read, for `replayProgress()`. */
export interface ReplayCounter {
  rowsRead: number;
}

/** The last sequence number the snapshot table covers. */
export function readSnapshotSeq(db: SqliteDatabase): number {
  return Number(db.prepare("SELECT value FROM meta WHERE key = 'snapshot_seq'").pluck().get() ?? 0);
}

/**
 * The projections version of the snapshot table's state, or undefined (unversioned). The meta
 * row `projections_version` holds it, and `projections_version_seq` the snapshot_seq it was
 * written with: it stands only while they agree. An appendonly without versions compacts
 * without touching either row; its snapshot (at another seq) then reads as unversioned, never as
 * the version of the snapshot it replaced. (At the same seq no event came after the snapshot it
 * loaded, so its state is that snapshot's, version included.)
 */
export function readProjectionsVersion(db: SqliteDatabase, snapshotSeq: number): string | undefined {
  const rows = db
    .prepare("SELECT key, value FROM meta WHERE key IN ('projections_version', 'projections_version_seq')")
    .raw()
    .all() as [string, unknown][];
  const meta = new Map(rows);
  const version = meta.get('projections_version');
  if (typeof version !== 'string' || Number(meta.get('projections_version_seq')) !== snapshotSeq)
    return undefined;
  return version;
}

/**
 * Records the projections version of the snapshot moved in at `seq` (absent: removes it), in the
 * compaction's swap transaction: the snapshot and its version change in one commit.
 */
export function writeProjectionsVersion(db: SqliteDatabase, seq: number, version: string | undefined): void {
  if (version === undefined) {
    db.prepare("DELETE FROM meta WHERE key IN ('projections_version', 'projections_version_seq')").run();
    return;
  }
  const upsert = db.prepare(
    'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );
  upsert.run('projections_version', version);
  upsert.run('projections_version_seq', seq);
}

/** The highest sequence number in the events table, or null when it is empty. */
export function readMaxSeq(db: SqliteDatabase): number | null {
  const max = db.prepare('SELECT max(seq) FROM events').pluck().get();
  return max === null || max === undefined ? null : Number(max);
}

/** Rows a replay will read, roughly (for progress): snapshot rows plus events above the snapshot. */
export function estimateRows(db: SqliteDatabase): number {
  const entries = Number(db.prepare('SELECT max(rowid) FROM snapshot').pluck().get() ?? 0);
  return entries + Math.max(0, (readMaxSeq(db) ?? 0) - readSnapshotSeq(db));
}

/** True when a compaction with `keepHistory` has made the `events_history` table. */
export function hasHistory(db: SqliteDatabase): boolean {
  return (
    db
      .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'events_history'")
      .pluck()
      .get() !== undefined
  );
}

/**
 * Streams the snapshot then the event groups above it, in batches. A group whose rows do not
 * follow each other (a gap, a continuation row without its head) is corruption; a group cut at
 * the very end of the table (only a tool could leave one: groups are committed whole) is dropped
 * with a warning, so that a command is replayed all or none.
 *
 * With `after` below the snapshot and an `events_history` table (`keepHistory`), the events the
 * snapshot covers were moved, not dropped: no snapshot then, but the groups after `after` from
 * `events_history`, then from `events`. The two tables hold one run of seqs between them (the
 * compaction moves each slice of rows in one transaction, oldest first), so a group a crash left
 * straddling them reads whole; a first row other than `after + 1` is `LogCompactedError` (the
 * history starts later: it was kept only from some compaction on). `after` at or above the
 * snapshot, or without the table, reads as without it: the caller's `ReplayFeed` filters.
 */
export async function* replayDatabase(
  db: SqliteDatabase,
  file: string,
  logger: Logger,
  counter: ReplayCounter,
  after?: number,
): AsyncGenerator<readonly ReplayRecord[]> {
  const snapshotSeq = readSnapshotSeq(db);
  const fromHistory = after !== undefined && after < snapshotSeq && hasHistory(db);
  if (!fromHistory) yield* snapshotBatches(db, file, counter, snapshotSeq);
  const sources = fromHistory ? ['events_history', 'events'] : ['events'];
  let expected = fromHistory ? after + 1 : snapshotSeq + 1;
  let last = expected - 1;
  /** Holds the group being read when its rows straddle two batches (or two tables). */
  const grouper = new RowGrouper(file);
  for (const table of sources) {
    const select = db
      .prepare(
        `SELECT seq, time, type, data, n, id, version, metadata FROM ${table} WHERE seq > ? ORDER BY seq LIMIT ?`,
      )
      .raw();
    for (;;) {
      const rows = select.all(last, BATCH) as EventRow[];
      const out: ReplayRecord[] = [];
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i];
        const seq = row[0];
        if (seq !== expected) {
          if (fromHistory && expected === after + 1) throw new LogCompactedError(after, seq, file);
          throw new CorruptLogError(
            file,
            0,
            `event seq ${expected}`,
            `the ${table} table jumps to seq ${seq}`,
          );
        }
        expected = seq + 1;
        const event: DomainEvent = { type: row[2], data: parse(row[3], file, 'event seq', seq) };
        const group = grouper.add(seq, row[1], event, row[4], row[5], row[6], row[7]);
        if (group !== null) out.push(group);
      }
      counter.rowsRead += rows.length;
      if (out.length > 0) yield out;
      if (rows.length > 0) last = rows[rows.length - 1][0];
      if (rows.length < BATCH) break;
    }
  }
  // Neither table had the first event asked for: the snapshot holds it, and history does not.
  if (fromHistory && expected === after + 1) throw new LogCompactedError(after, snapshotSeq + 1, file);
  const open = grouper.pending;
  if (open !== null) {
    logger.warn(
      `${file}: the log ends inside the command at seq ${open.seq} (${open.events.length} of ${open.size} events); ` +
        'it was not replayed',
    );
  }
}

/** The snapshot's record and its entries, in batches (nothing for a log without one). */
function* snapshotBatches(
  db: SqliteDatabase,
  file: string,
  counter: ReplayCounter,
  snapshotSeq: number,
): Generator<readonly ReplayRecord[]> {
  const projectionsVersion = readProjectionsVersion(db, snapshotSeq);
  const entries = db
    .prepare('SELECT rowid, key, value FROM snapshot WHERE rowid > ? ORDER BY rowid LIMIT ?')
    .raw();
  let batch: ReplayRecord[] = [];
  let rowid = 0;
  for (;;) {
    const rows = entries.all(rowid, BATCH) as EntryRow[];
    if (batch.length === 0 && rowid === 0 && (snapshotSeq > 0 || rows.length > 0)) {
      batch.push(
        projectionsVersion === undefined
          ? { kind: 'snapshot', seq: snapshotSeq }
          : { kind: 'snapshot', seq: snapshotSeq, projectionsVersion },
      );
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i];
      batch.push({
        kind: 'entry',
        key: row[1],
        value: parse(row[2], file, 'snapshot key', row[1]),
      });
    }
    counter.rowsRead += rows.length;
    if (rows.length < BATCH) break;
    rowid = rows[rows.length - 1][0];
    yield batch;
    batch = [];
  }
  if (batch.length > 0) yield batch;
}

/** `JSON.parse`, naming the row on failure (the message is built only then: this runs per row). */
export function parse(text: string, file: string, what: string, where: string | number): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new CorruptLogError(
      file,
      0,
      `JSON data in ${what} ${JSON.stringify(where)}`,
      (err as Error).message,
    );
  }
}
