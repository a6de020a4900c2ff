import type { SqliteDatabase, SqliteStatement } from './driver';
import {
  type ConsumerRecord,
  type EventGroup,
  LogCompactedError,
  type ParkedEvent,
  StaleConsumerError,
  type StaleMark,
} from '../../src/index';
import { EVENT_ROW_COLUMNS, type EventRow, groupsOfRows } from '../common/row-groups';
import { hasHistory, parse, readSnapshotSeq } from './replay';

/*
 * Durable consumers on SQLite: `read` is a keyset query on the events' primary key (never a
 * scan of the table), and the consumers' records are rows of a `consumers` table in the same
 * database, each save its own transaction (committed per the store's `synchronous`, as appends).
 * The table is made by the first save, so a database without consumers keeps the schema it had
 * (no version bump; older appendonly versions and the tools ignore the table). Its `stale`
 * column (JSON of the compaction's `StaleMark`, NULL when not stale) came later: a table made
 * before gets it at the first save, `ALTER TABLE ADD COLUMN` (a schema change of the table only;
 * older code names its columns, so it reads and writes around it).
 */

const CREATE = `CREATE TABLE IF NOT EXISTS consumers (name TEXT PRIMARY KEY, position INTEGER NOT NULL, parked TEXT NOT NULL, stale TEXT) STRICT, WITHOUT ROWID`;

/** True when the consumers table has the `stale` column (a table made before it has not). */
function hasStaleColumn(db: SqliteDatabase): boolean {
  return (
    db.prepare("SELECT 1 FROM pragma_table_info('consumers') WHERE name = 'stale'").pluck().get() !==
    undefined
  );
}

/** True when the database has the consumers table. */
function hasConsumers(db: SqliteDatabase): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'consumers'").pluck().get() !==
    undefined
  );
}

/**
 * The groups holding events after `after`, whole, up to about `limit` events (see
 * `EventStore.read`). Below the snapshot, the rows of `events_history` (keepHistory) when it
 * holds them, else `LogCompactedError`. A group is committed whole in one transaction, so the
 * rows read are whole groups except, at most, one cut by the LIMIT: it is left for the next read.
 */
export function readGroups(db: SqliteDatabase, file: string, after: number, limit: number): EventGroup[] {
  const snapshotSeq = readSnapshotSeq(db);
  let source = 'events';
  // Below the snapshot: the rows kept for consumers, or by keepHistory, in `events_history`.
  if (after < snapshotSeq && hasHistory(db)) {
    source = `(SELECT ${EVENT_ROW_COLUMNS} FROM events_history UNION ALL SELECT ${EVENT_ROW_COLUMNS} FROM events)`;
  }
  // `after` may fall inside a group: start at the head row of the group holding after + 1.
  const head = db
    .prepare(`SELECT max(seq) FROM ${source} WHERE seq <= ? AND n > 0`)
    .pluck()
    .get(after + 1);
  const start = head === null || head === undefined ? after + 1 : Number(head);
  const select = db
    .prepare(`SELECT ${EVENT_ROW_COLUMNS} FROM ${source} WHERE seq >= ? ORDER BY seq LIMIT ?`)
    .raw();
  for (let rowsWanted = limit + 64; ; rowsWanted *= 2) {
    const rows = select.all(start, rowsWanted) as EventRow[];
    if (after < snapshotSeq && (rows.length === 0 || Number(rows[0][0]) > after + 1))
      throw new LogCompactedError(after, rows.length === 0 ? snapshotSeq + 1 : Number(rows[0][0]), file);
    const groups = groupsOfRows(rows, file, limit, (text, seq) => parse(text, file, 'event seq', seq));
    // Nothing whole in a full page: one group larger than the page; read more rows.
    if (groups.length > 0 || rows.length < rowsWanted)
      return groups.filter((g) => g.seq + g.events.length - 1 > after);
  }
}

/** Every consumer's record, by name ([] before the first save made the table). */
export function loadConsumers(db: SqliteDatabase): ConsumerRecord[] {
  if (!hasConsumers(db)) return [];
  const stale = hasStaleColumn(db) ? 'stale' : 'NULL';
  const rows = db
    .prepare(`SELECT name, position, parked, ${stale} FROM consumers ORDER BY name`)
    .raw()
    .all() as [string, number, string, string | null][];
  return rows.map(([name, position, parked, mark]) => ({
    name,
    position,
    parked: JSON.parse(parked) as ParkedEvent[],
    ...(mark !== null ? { stale: JSON.parse(mark) as StaleMark } : {}),
  }));
}

/**
 * One transaction: the table (first time), its `stale` column (a table made before it), the
 * row. A save without `stale` of a row marked stale is refused (see `EventStore.saveConsumer`).
 */
export function saveConsumer(db: SqliteDatabase, record: ConsumerRecord): void {
  db.transaction(() => {
    db.exec(CREATE);
    if (!hasStaleColumn(db)) db.exec('ALTER TABLE consumers ADD COLUMN stale TEXT');
    const stored = db.prepare('SELECT stale FROM consumers WHERE name = ?').pluck().get(record.name) as
      | string
      | null
      | undefined;
    if (typeof stored === 'string' && record.stale === undefined) {
      const mark = JSON.parse(stored) as StaleMark;
      throw new StaleConsumerError(record.name, `a compaction at seq ${mark.seq} marked it stale`);
    }
    db.prepare(
      'INSERT INTO consumers (name, position, parked, stale) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position, parked = excluded.parked, stale = excluded.stale',
    ).run(
      record.name,
      record.position,
      JSON.stringify(record.parked),
      record.stale === undefined ? null : JSON.stringify(record.stale),
    );
  })();
}

/**
 * The statement a reaction's transaction runs (the group writer's, beside the INSERT of its
 * events, so both commit or neither): the position becomes the greater of the stored one and the
 * reaction's, parked events untouched. Made with the table, which the consumer's first save
 * already created (the App stores the record before the consumer starts).
 */
export function reactionStatement(db: SqliteDatabase): SqliteStatement {
  db.exec(CREATE);
  return db.prepare('UPDATE consumers SET position = max(position, ?) WHERE name = ?');
}

/** Deletes a consumer's row; false when there was none. */
export function deleteConsumer(db: SqliteDatabase, name: string): boolean {
  if (!hasConsumers(db)) return false;
  return Number(db.prepare('DELETE FROM consumers WHERE name = ?').run(name).changes) > 0;
}
