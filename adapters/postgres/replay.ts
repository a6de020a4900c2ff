import {
  CorruptLogError,
  type DomainEvent,
  type JsonValue,
  LogCompactedError,
  LogLostError,
} from '../../src/index';
import type { ReplayRecord } from '../../src/store/replay-batch';
import { RowGrouper } from '../../src/store/row-envelope';
import { EVENT_ROW_COLUMNS } from '../common/row-groups';
import { persistenceError, withConnection } from './connection';
import {
  type PgArrayQuery,
  type PgClientLike,
  type PgPoolLike,
  type PgResult,
  type PreparedStatement,
  preparedStatement,
  TEXT_COLUMNS,
} from './driver';
import { parseProjectionsVersion, projectionsVersionKey, type Tables } from './schema';

/**
 * Rows per page. Each page is one keyset query (`seq > last ORDER BY seq LIMIT n`) on the primary
 * key, so memory is bounded by a page, never the log. The pages run in one REPEATABLE READ
 * transaction (the store's `replay`): the head row, the snapshot it names and the events above it
 * are read as of one instant, so a compaction switching and deleting meanwhile is not seen.
 */
const PAGE = 4096;

/** A row of {@link eventPageSelect}, every column as sent ({@link TEXT_COLUMNS}). */
type EventRow = [
  seq: string,
  time: string,
  type: string,
  data: string,
  n: string,
  id: string | null,
  version: string | null,
  metadata: string | null,
];

type EntryRow = [ord: string, key: string, value: string];

/** The head row as a replay's transaction sees it: where the log ends, and the snapshot it names. */
export interface HeadRow {
  /** The last sequence number committed (0 for none). */
  readonly seq: number;
  /** The id of the batch that committed it (null before the first append). */
  readonly batch: string | null;
  /** The snapshot (0 / 0 for none). */
  readonly snapshotSeq: number;
  readonly snapshotId: number;
  /** The snapshot's projections version (see `projectionsVersionKey`); absent: unversioned. */
  readonly projectionsVersion?: string;
}

/**
 * Reads the head row (all zero for a log without one) with the snapshot's projections version;
 * `where` names the log in errors.
 */
export async function readHeadRow(
  client: PgClientLike,
  t: Tables,
  log: string,
  where: string,
): Promise<HeadRow> {
  const rows = await read(client, where, {
    text: headRowSelect(t, '$1', '$2'),
    values: [log, projectionsVersionKey(log)],
    rowMode: 'array',
    types: TEXT_COLUMNS,
  });
  return headRowOf(rows[0]);
}

/** The head row's query (see {@link readHeadRow}); `logAt` and `keyAt` are its two values. */
function headRowSelect(t: Tables, logAt: string, keyAt: string): string {
  return `SELECT h.seq, h.batch, h.snapshot_seq, h.snapshot_id, m.value
           FROM ${t.heads} h LEFT JOIN ${t.meta} m ON m.key = ${keyAt} WHERE h.log = ${logAt}`;
}

/** A row of {@link headRowSelect} (undefined: no head row, a log never appended to). */
export function headRowOf(found: unknown): HeadRow {
  const row = found as
    | [seq: string, batch: string | null, snapshotSeq: string, id: string, version: string | null]
    | undefined;
  const head =
    row === undefined
      ? { seq: 0, batch: null, snapshotSeq: 0, snapshotId: 0 }
      : { seq: Number(row[0]), batch: row[1], snapshotSeq: Number(row[2]), snapshotId: Number(row[3]) };
  const version = parseProjectionsVersion(row?.[4], head.snapshotId);
  return version === undefined ? head : { ...head, projectionsVersion: version };
}

/**
 * One page of events after `$2` (see {@link pages}), bounded by seq as well as by LIMIT. Without
 * the bound, on a table not yet analysed (a log just converted into PostgreSQL, before
 * autovacuum's ANALYZE), the planner took a bitmap scan of every event after the position and a
 * sort for each page (110 ms for the first page of 300,000 events, `EXPLAIN ANALYZE`): a whole
 * replay sorted the rest of the log once a page. Sequence numbers are dense above the snapshot,
 * so the bound changes no page's rows there; below it (a catch-up behind a compaction) a page
 * ends early where covered events are gone, which `pages` refuses as it refused the jump.
 */
export function eventPageSelect(t: Tables, logAt: string, afterAt: string): string {
  return `SELECT ${EVENT_ROW_COLUMNS} FROM ${t.events}
    WHERE log = ${logAt} AND seq > ${afterAt} AND seq <= ${afterAt}::bigint + ${PAGE} ORDER BY seq LIMIT ${PAGE}`;
}

/**
 * The head row and the first page of events after `after`, read in one round trip: by
 * {@link lockAndRead} (the head row locked) or by {@link catchUpInSnapshot} (in a snapshot).
 */
export interface LockedRead {
  readonly head: HeadRow;
  readonly page: readonly unknown[];
}

/**
 * Opens a transaction, locks the head row, and reads it and the first page of events after
 * `after`: one round trip (a simple-protocol query of three statements), because while the lock
 * is held every other appender waits, and each round trip on a loaded machine costs
 * milliseconds (measured on 2 cores: the locked catch-up took two round trips, 12 ms of a 28 ms
 * turn). Read committed: the page is a statement of its own, so its snapshot is taken after the
 * lock was granted and sees every append committed before (the one that held the lock
 * included); the statement that waited for the lock sees the head row's latest version. The
 * transaction stays open (the caller ends it); on an error it is rolled back.
 *
 * The simple protocol takes no parameters: `log` and `after` go in as literals (`after` an
 * integer, `log` quoted by {@link quoteLiteral}).
 */
export async function lockAndRead(
  client: PgClientLike,
  t: Tables,
  log: string,
  after: number,
): Promise<LockedRead> {
  const text = `BEGIN; ${headAndPage(t, log, after, ' FOR UPDATE OF h').join('; ')}`;
  try {
    // Three statements: pg answers with one result per statement.
    const results = (await client.query({
      text,
      rowMode: 'array',
      types: TEXT_COLUMNS,
    })) as unknown as PgResult[];
    return { head: headRowOf(results[1].rows[0]), page: results[2].rows };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * The head row's and the first page's statements (after `after`) as SQL with literals, for a
 * simple-protocol query, which takes no parameters; `lock` follows the head row's statement.
 */
function headAndPage(t: Tables, log: string, after: number, lock = ''): [string, string] {
  if (!Number.isSafeInteger(after)) throw new RangeError(`not a sequence number: ${after}`);
  return [`${headRowSelectOf(t, log)}${lock}`, eventPageSelect(t, quoteLiteral(log), String(after))];
}

/** The head row's statement with `log` as a literal (see {@link headRowSelect}). */
export function headRowSelectOf(t: Tables, log: string): string {
  return headRowSelect(t, quoteLiteral(log), quoteLiteral(projectionsVersionKey(log)));
}

/** A string as an SQL literal, for either setting of `standard_conforming_strings` (as pg's `escapeLiteral`). */
export function quoteLiteral(text: string): string {
  const quoted = `'${text.replace(/'/g, "''")}'`;
  return text.includes('\\') ? ` E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}

/**
 * Streams the log in pages: without `after`, the snapshot (if any) then the events above it;
 * with `after`, only the events after it, and `LogCompactedError` when the first one left is
 * further on (compaction deleted the ones asked for) or when a page finds events the snapshot
 * covers deleted since the one before. A gap above the snapshot's seq, or a continuation row
 * without its first, is corruption: groups are committed whole, in one statement.
 */
export async function replayLog(
  read: LogRead,
  push: (batch: readonly ReplayRecord[]) => void,
): Promise<void> {
  for await (const batch of pages(read)) push(batch);
}

/** What one replay reads, and where it counts the characters of event data it read. */
export interface LogRead {
  readonly client: PgClientLike;
  readonly t: Tables;
  readonly log: string;
  /** Names the log in errors. */
  readonly where: string;
  readonly after: number | undefined;
  readonly counter: { bytes: number };
  /**
   * Set to the head row as the replay's transaction saw it, before the first page: the replay
   * reads up to it, so when it ends there the instance has applied the head's batch.
   */
  readonly found?: { head: HeadRow | null };
  /** The head row and the first page, already read ({@link lockAndRead}, {@link catchUpInSnapshot}). */
  readonly prefetched?: LockedRead;
}

/** How every read of the log begins: one consistent view while the writers append. */
const SNAPSHOT = 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';

/**
 * Runs `read` in a REPEATABLE READ READ ONLY transaction on a connection of its own (never the
 * writer's, so that nothing an append sends can land inside it). The driver's errors become
 * PersistenceError; a sink's pass as they are.
 */
export async function inSnapshot(
  pool: PgPoolLike,
  where: string,
  read: (client: PgClientLike) => Promise<void>,
): Promise<void> {
  await snapshotConnection(pool, where, (client, fail) => inTransaction(client, fail, read));
}

/** `read` between the snapshot's BEGIN and its COMMIT, on `client`. */
async function inTransaction(
  client: PgClientLike,
  fail: (err: unknown) => never,
  read: (client: PgClientLike) => Promise<void>,
): Promise<void> {
  await client.query(SNAPSHOT).catch(fail);
  await read(client);
  await client.query('COMMIT').catch(fail);
}

/**
 * A connection of the pool for a read in a transaction of its own; `fail` turns a driver error
 * into the PersistenceError a store's read rejects with. Back to the pool once rolled back, when
 * the read failed (destroyed when even that fails).
 */
function snapshotConnection<T>(
  pool: PgPoolLike,
  where: string,
  work: (client: PgClientLike, fail: (err: unknown) => never) => Promise<T>,
): Promise<T> {
  const fail = (err: unknown): never => {
    throw persistenceError(`cannot read ${where}`, err);
  };
  return withConnection(pool, (client) => work(client, fail), {
    unreachable: (err) => persistenceError(`cannot read ${where}`, err),
    // Unfit for the next user only when it cannot even roll back.
    broken: (client) =>
      client.query('ROLLBACK').then(
        () => false,
        () => true,
      ),
  });
}

/**
 * A catch-up (the events after `after`), in one round trip when it is small: one prepared
 * statement reads the head row and the events after `after` joined to it, in one snapshot (read
 * committed takes one per statement), and `read` gets the head and the page already read
 * (`prefetched`): given them, it must send nothing on `client` (`pages` sends nothing for a page
 * that is not full). A follower catches up on every commit of the others, a few events at a time
 * (`bench/pg-follow.ts`, 16 events per `sync()`: a REPEATABLE READ transaction of four
 * statements sent as one simple-protocol query, parsed and planned each time, then this
 * statement, with `sync()` reading no head of its own either way: 0.61–0.65× → 0.95–0.98× a raw
 * read's rate in wall time per event). When the events do not reach the head in
 * that page (more than a page, or a compaction deleted some of those asked for), the read is
 * made again as {@link inSnapshot} makes it, in a REPEATABLE READ transaction, page by page:
 * what the first statement read is dropped; at that size, one round trip more is nothing.
 */
export async function catchUpInSnapshot(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  after: number,
  where: string,
  read: (client: PgClientLike, prefetched?: LockedRead) => Promise<void>,
): Promise<void> {
  const statement = catchUpStatement(t);
  await snapshotConnection(pool, where, async (client, fail) => {
    const { head, page } = await headWithEvents(client, fail, statement, log, [after]);
    const reached = page.length === 0 ? after : Number((page[page.length - 1] as unknown[])[0]);
    if (page.length < PAGE && reached >= head.seq) return read(client, { head, page });
    await inTransaction(client, fail, read);
  });
}

/**
 * The catch-up's statement: the head row and a page of events after `$3`, bounded as every page
 * is ({@link eventPageSelect}). Prepared, it may get a generic plan, which on a table not yet
 * analysed was, unbounded, a bitmap scan of every event after `$3` and a sort (102 ms for 300,000
 * events, against 1.7 ms once analysed); bounded, such a plan reads one page at most.
 */
const catchUpStatement = headWithEventsStatement('catch_up', (t) => eventPageSelect(t, '$1', '$3'));

/** Columns of an event row ({@link EVENT_ROW_COLUMNS}); the head row's follow them in {@link headWithEvents}. */
const EVENT_COLUMNS = EVENT_ROW_COLUMNS.split(',').length;

/**
 * The statement, for each set of tables, that reads the head row (`$1` the log, `$2` its
 * projections version's key) and `events` (a SELECT of {@link EVENT_ROW_COLUMNS} that may use
 * `$1` and `$3` on) joined to it: one statement, so one snapshot in read committed, and one round
 * trip with no BEGIN or COMMIT. A reader of a few events at a time (a follower, a durable
 * consumer) made it four statements in a REPEATABLE READ transaction, parsed and planned on each
 * call: prepared once, it is bound and run only (`bench/pg-follow.ts`).
 */
export function headWithEventsStatement(
  kind: string,
  events: (t: Tables) => string,
): (t: Tables) => PreparedStatement {
  const made = new WeakMap<Tables, PreparedStatement>();
  return (t) => {
    let statement = made.get(t);
    if (statement === undefined) {
      statement = preparedStatement(
        kind,
        `SELECT e.*, h.seq, h.batch, h.snapshot_seq, h.snapshot_id, m.value
          FROM ${t.heads} h LEFT JOIN ${t.meta} m ON m.key = $2
          LEFT JOIN LATERAL (${events(t)}) e ON true
          WHERE h.log = $1
          ORDER BY e.seq`,
      );
      made.set(t, statement);
    }
    return statement;
  };
}

/**
 * Runs a {@link headWithEventsStatement} on `client` with `values` from `$3` on: the head row
 * (none: a log never appended to) and the event rows, as arrays of text.
 */
export async function headWithEvents(
  client: PgClientLike,
  fail: (err: unknown) => never,
  statement: PreparedStatement,
  log: string,
  values: readonly unknown[],
): Promise<LockedRead> {
  const { rows } = await client
    .query({
      name: statement.name,
      text: statement.text,
      values: [log, projectionsVersionKey(log), ...values],
      rowMode: 'array',
      types: TEXT_COLUMNS,
    })
    .catch(fail);
  const first = rows[0] as unknown[] | undefined;
  // The events' columns are null in the one row when there are none.
  return {
    head: headRowOf(first?.slice(EVENT_COLUMNS)),
    page: first === undefined || first[0] === null ? [] : rows,
  };
}

/** {@link headWithEvents} on a connection of the pool, as {@link inSnapshot} takes one. */
export function headWithEventsOn(
  pool: PgPoolLike,
  where: string,
  statement: PreparedStatement,
  log: string,
  values: readonly unknown[],
): Promise<LockedRead> {
  return snapshotConnection(pool, where, (client, fail) =>
    headWithEvents(client, fail, statement, log, values),
  );
}

/**
 * The log's records, page by page (see {@link replayLog}); exported for the `appendonly` tool,
 * which reads them as an iterable inside a transaction of its own.
 */
export async function* pages({
  client,
  t,
  log,
  where,
  after,
  counter,
  found,
  prefetched,
}: LogRead): AsyncGenerator<readonly ReplayRecord[]> {
  const head = prefetched?.head ?? (await readHeadRow(client, t, log, where));
  if (found !== undefined) found.head = head;
  let last: number;
  if (after === undefined) {
    if (head.snapshotId > 0) yield* snapshotPages(client, t, log, head, where);
    last = head.snapshotSeq;
  } else {
    // The log ends before what this instance applied: a database crash under
    // synchronous_commit = off lost commits it had read.
    if (head.seq < after) throw new LogLostError(where, after, `the log ends at seq ${head.seq}`);
    last = after;
  }
  const select = eventPageSelect(t, '$1', '$2');
  const pageAfter = (seq: number) =>
    read(client, where, {
      text: select,
      values: [log, seq],
      rowMode: 'array',
      types: TEXT_COLUMNS,
    }) as Promise<EventRow[]>;
  let expected = last + 1;
  const grouper = new RowGrouper(where);
  let first = prefetched?.page as EventRow[] | undefined;
  // The next page's query, sent as soon as a full page arrives, before that page is decoded and
  // applied: the server reads it while this process works (one page's query at a time, the
  // reader sat idle a seventh of a replay). At most one ahead: memory stays two pages. Its text
  // and `last` are what reading one page at a time sends, taken from the rows before any is
  // decoded, so only when the statement runs changes: in REPEATABLE READ every page sees the
  // transaction's snapshot whenever it runs; in READ COMMITTED (the locked catch-up) a page
  // sees any deletion of covered events up to when it runs, and the checks below hold whenever
  // that is (a gap or an early end below the snapshot's seq is LogCompactedError).
  let ahead: Promise<EventRow[]> | null = null;
  try {
    for (;;) {
      const page = first ?? (await (ahead ?? pageAfter(last)));
      first = undefined;
      ahead = null;
      if (page.length === PAGE) {
        last = Number(page[PAGE - 1][0]);
        ahead = pageAfter(last);
        // Awaited by the next turn of the loop, or in `finally`: never unhandled.
        ahead.catch(() => {});
      }
      const out: ReplayRecord[] = [];
      for (let i = 0; i < page.length; i++) {
        const row = page[i];
        const seq = Number(row[0]);
        if (seq !== expected) {
          // Events the snapshot covers are gone: a compaction deleted them (they live in the
          // snapshot). The first one after `after`, or, on the locked head's catch-up (read
          // committed, every page a statement of its own), a later one: the covered events of a
          // snapshot switched in before the lock go in slices, oldest first, while it reads, so a
          // page may start past a slice (`deleteCovered`). A gap above the snapshot's seq is
          // corruption: no switch can happen while the head row is locked (or, in REPEATABLE
          // READ, after the transaction's snapshot), so nothing above it is deleted meanwhile.
          if (after !== undefined && (expected === after + 1 || expected <= head.snapshotSeq))
            throw new LogCompactedError(after, seq, where);
          throw new CorruptLogError(where, 0, `event seq ${expected}`, `the events jump to seq ${seq}`);
        }
        expected = seq + 1;
        const event: DomainEvent = { type: row[2], data: parse(row[3], where, seq) };
        counter.bytes += row[3].length;
        const n = Number(row[4]);
        // The first row after `after` continues a command: its head was compacted away.
        if (n < 1 && after !== undefined && seq === after + 1 && grouper.pending === null)
          throw new LogCompactedError(after, seq, where);
        const version = row[6] === null ? null : Number(row[6]);
        const group = grouper.add(seq, Number(row[1]), event, n, row[5], version, row[7]);
        if (group !== null) out.push(group);
      }
      if (out.length > 0) yield out;
      if (page.length < PAGE) break;
    }
  } finally {
    // However the read ends (its end, an error, the consumer stopping early), no query of it
    // is left in flight: the connection's next statement (the caller's COMMIT or ROLLBACK, an
    // append on the writer's connection, another reader's BEGIN once released to the pool) is
    // never sent while a page of this read may still be running. Its error, if any, is dropped:
    // the read has already failed with its own, or its consumer has stopped.
    if (ahead !== null) await ahead.catch(() => {});
  }
  // The events end inside what the snapshot covers: compacted after `after` (nothing after it
  // is left), or, on the locked head's catch-up, deleted between two pages (see above).
  if (after !== undefined && expected <= head.snapshotSeq)
    throw new LogCompactedError(after, head.snapshotSeq + 1, where);
  const open = grouper.pending;
  if (open !== null)
    throw new CorruptLogError(
      where,
      0,
      `event ${open.events.length + 1} of ${open.size} of the command at seq ${open.seq}`,
      'the log ends',
    );
  // The events end before the head: an append moves the head and inserts its rows in one
  // statement, and the read saw the head row as of its own snapshot (or under its lock), so
  // this is damage (rows deleted by hand), and a reader that stopped here would call itself
  // caught up short of commands that were acknowledged.
  if (expected - 1 < head.seq)
    throw new CorruptLogError(
      where,
      0,
      `event seq ${expected}`,
      `the events end at seq ${expected - 1}, the head row is at seq ${head.seq}`,
    );
}

/** The snapshot's record, then its entries in pages. */
async function* snapshotPages(
  client: PgClientLike,
  t: Tables,
  log: string,
  start: HeadRow,
  where: string,
): AsyncGenerator<readonly ReplayRecord[]> {
  const select = `SELECT ord, key, value FROM ${t.snapshot} WHERE log = $1 AND id = $2 AND ord > $3 ORDER BY ord LIMIT ${PAGE}`;
  const version = start.projectionsVersion;
  let batch: ReplayRecord[] = [
    version === undefined
      ? { kind: 'snapshot', seq: start.snapshotSeq }
      : { kind: 'snapshot', seq: start.snapshotSeq, projectionsVersion: version },
  ];
  let ord = '-1';
  for (;;) {
    const values = [log, start.snapshotId, ord];
    const query = { text: select, values, rowMode: 'array', types: TEXT_COLUMNS } as const;
    const page = (await read(client, where, query)) as EntryRow[];
    for (let i = 0; i < page.length; i++) {
      const row = page[i];
      batch.push({ kind: 'entry', key: row[1], value: parse(row[2], `${t.snapshot}`, row[1]) });
    }
    yield batch;
    batch = [];
    if (page.length < PAGE) return;
    ord = page[page.length - 1][0];
  }
}

/** One page; a driver error (a lost connection) becomes the PersistenceError a store's read rejects with. */
async function read(client: PgClientLike, where: string, query: PgArrayQuery): Promise<unknown[]> {
  try {
    return (await client.query(query)).rows;
  } catch (err) {
    throw persistenceError(`cannot read ${where}`, err);
  }
}

/** `JSON.parse`, naming the row on failure (the message is built only then). */
export function parse(text: string, where: string, at: string | number): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new CorruptLogError(where, 0, `JSON data at ${JSON.stringify(at)}`, (err as Error).message);
  }
}
