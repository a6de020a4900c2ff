import {
  ConsumerError,
  type ConsumerRecord,
  type EventGroup,
  LogCompactedError,
  type ParkedEvent,
  StaleConsumerError,
  type StaleMark,
} from '../../src/index';
import { EVENT_ROW_COLUMNS, type EventRow, groupsOfRows } from '../common/row-groups';
import type { FencedPosition } from './append';
import { persistenceError, withConnection } from './connection';
import { type PgClientLike, type PgPoolLike, TEXT_COLUMNS } from './driver';
import {
  type HeadRow,
  headWithEventsOn,
  headWithEventsStatement,
  inSnapshot,
  parse,
  readHeadRow,
} from './replay';
import type { Tables } from './schema';

/*
 * Durable consumers on PostgreSQL. `read` is a keyset query on the events' primary key in a
 * REPEATABLE READ transaction of its own (never the writer's connection), so it sees committed
 * groups only, whole. The records are rows of `<schema>.consumers`, one per (log, name), made by
 * the first save (CREATE TABLE IF NOT EXISTS: an administrator may make it beforehand for a role
 * without CREATE); the schema version does not move, so older appendonly code shares the log.
 *
 * One holder per name (`consumer-locks.ts`): an instance runs a consumer only while it holds
 * the name's advisory lock; the fence is an epoch per name in `<schema>.consumer_leases`, bumped
 * by each new holder under the lock and compared by every save of a holder (`saveFenced`), so a
 * deposed holder's save cannot land once the next one began. A save never moves a stored
 * position back either (belt and braces, and for callers without a lease).
 *
 * The `stale` column (JSON of a compaction's `StaleMark`; NULL: not stale) came after the table:
 * a table made before gets it at the first save (`ADD COLUMN IF NOT EXISTS`, the table owner's
 * right, a catalog change only); until then a load reads every record as not stale. Older code
 * names its columns, so it reads and writes around it. No save clears a stale mark (only a
 * delete does: `app.resetConsumer`): a save without one of a row marked stale stores nothing
 * and is refused with `StaleConsumerError`.
 */

function consumersTable(t: Tables): string {
  return `"${t.schema}".consumers`;
}

/**
 * The groups holding events after `after`, whole, up to about `limit` events (see
 * `EventStore.read`), read in one snapshot: the head row, and the rows from the first row of the
 * group that holds `after + 1` on. A live consumer reads a few events at a time, so both are one
 * prepared statement (see `headWithEventsStatement`). When those rows are all of one group that
 * goes on past them, the read is made again in a REPEATABLE READ transaction of its own, asking
 * for twice as many rows each time.
 */
export async function readGroups(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  after: number,
  limit: number,
): Promise<EventGroup[]> {
  if (!Number.isSafeInteger(after) || !Number.isSafeInteger(limit))
    throw new RangeError(`not a position and a limit: ${after}, ${limit}`);
  const groupsOf = (head: HeadRow, rows: EventRow[], rowsWanted: number): EventGroup[] | null => {
    // Below the snapshot the rows may be gone (compacted); a store keeping history still has them.
    if (after < head.snapshotSeq && (rows.length === 0 || Number(rows[0][0]) > after + 1))
      throw new LogCompactedError(
        after,
        rows.length === 0 ? head.snapshotSeq + 1 : Number(rows[0][0]),
        where,
      );
    const groups = groupsOfRows(rows, where, limit, (text, seq) => parse(text, where, seq));
    if (groups.length === 0 && rows.length === rowsWanted) return null; // one group, longer than the rows
    return groups.filter((g) => g.seq + g.events.length - 1 > after);
  };
  const first = limit + 64;
  const read = await headWithEventsOn(pool, where, readStatement(t), log, [after, first]);
  const found = groupsOf(read.head, read.page as EventRow[], first);
  if (found !== null) return found;
  let out: EventGroup[] = [];
  await inSnapshot(pool, where, async (client) => {
    const again = await readHeadRow(client, t, log, where);
    for (let rowsWanted = first * 2; ; rowsWanted *= 2) {
      const { rows: more } = await client.query({
        text: rowsFrom(t, '$1', '$2', '$3'),
        values: [log, after, rowsWanted],
        rowMode: 'array',
        types: TEXT_COLUMNS,
      });
      const groups = groupsOf(again, more as EventRow[], rowsWanted);
      if (groups !== null) {
        out = groups;
        return;
      }
    }
  });
  return out;
}

/** The read's statement (see {@link readGroups}). */
const readStatement = headWithEventsStatement('consumer_read', (t) => rowsFrom(t, '$1', '$3', '$4'));

/**
 * Up to `rowsAt` rows of the log `logAt` from the first row of the group holding `afterAt + 1`
 * (a group's first row has its size, `n > 0`, the others 0). Bounded by seq as well as by
 * LIMIT (sequence numbers are dense), so that a generic plan of the prepared statement, on a table
 * not yet analysed, reads no more rows than it returns (see `catchUpInSnapshot`).
 */
function rowsFrom(t: Tables, logAt: string, afterAt: string, rowsAt: string): string {
  return `SELECT r.*
    FROM (SELECT COALESCE((SELECT max(seq) FROM ${t.events}
        WHERE log = ${logAt} AND seq <= ${afterAt}::bigint + 1 AND n > 0), ${afterAt}::bigint + 1) AS start) g,
      LATERAL (SELECT ${EVENT_ROW_COLUMNS} FROM ${t.events}
        WHERE log = ${logAt} AND seq >= g.start AND seq < g.start + ${rowsAt}::bigint
        ORDER BY seq LIMIT ${rowsAt}::bigint) r`;
}

/** `work` on a connection of the pool; a driver's error becomes PersistenceError, a stale consumer's passes. */
function withClient<T>(
  pool: PgPoolLike,
  where: string,
  work: (client: PgClientLike) => Promise<T>,
): Promise<T> {
  return withConnection(
    pool,
    (client) =>
      work(client).catch((err: unknown) => {
        if (err instanceof StaleConsumerError) throw err;
        throw persistenceError(`consumers of ${where}`, err);
      }),
    {
      unreachable: (err) => persistenceError(`cannot reach ${where}`, err),
      broken: (_client, err) => !(err instanceof StaleConsumerError),
    },
  );
}

async function tableExists(client: PgClientLike, t: Tables): Promise<boolean> {
  return (await tableShape(client, t)).found;
}

/** Whether the consumers table is there, and whether it has the `stale` column. */
async function tableShape(client: PgClientLike, t: Tables): Promise<{ found: boolean; stale: boolean }> {
  const r = await client.query(
    `SELECT to_regclass($1) IS NOT NULL AS found,
       EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'stale' AND NOT attisdropped) AS stale`,
    [consumersTable(t)],
  );
  return r.rows[0] as { found: boolean; stale: boolean };
}

/**
 * Makes the consumers table when it is missing, or adds the `stale` column to one made before
 * it; false when the column is not there and this role cannot add it (not the table's owner):
 * positions are then saved without it, and a stale mark cannot be, so the compaction that wanted
 * it keeps the consumer's events (retainForConsumers).
 */
async function ensureConsumersTable(client: PgClientLike, t: Tables): Promise<boolean> {
  const shape = await tableShape(client, t);
  if (!shape.found) {
    await ensureTable(client, consumersTable(t), CONSUMERS_COLUMNS);
    return true;
  }
  if (shape.stale) return true;
  return client.query(`ALTER TABLE ${consumersTable(t)} ADD COLUMN IF NOT EXISTS stale text`).then(
    () => true,
    () => false,
  );
}

/** After a save that stored nothing: refuses it when the row is marked stale. */
async function refuseIfStale(client: PgClientLike, t: Tables, log: string, name: string): Promise<void> {
  const held = await client.query(`SELECT stale FROM ${consumersTable(t)} WHERE log = $1 AND name = $2`, [
    log,
    name,
  ]);
  const mark = (held.rows[0] as { stale: string | null } | undefined)?.stale;
  if (typeof mark === 'string')
    throw new StaleConsumerError(
      name,
      `a compaction at seq ${(JSON.parse(mark) as StaleMark).seq} marked it stale`,
    );
}

export function loadConsumers(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
): Promise<ConsumerRecord[]> {
  return withClient(pool, where, async (client) => {
    const shape = await tableShape(client, t);
    if (!shape.found) return [];
    const r = await client.query(
      `SELECT name, position::float8 AS position, parked, ${shape.stale ? 'stale' : 'NULL::text AS stale'} FROM ${consumersTable(t)} WHERE log = $1 ORDER BY name`,
      [log],
    );
    return (r.rows as { name: string; position: number; parked: string; stale: string | null }[]).map(
      (row) => ({
        name: row.name,
        position: Number(row.position),
        parked: JSON.parse(row.parked) as ParkedEvent[],
        ...(row.stale !== null ? { stale: JSON.parse(row.stale) as StaleMark } : {}),
      }),
    );
  });
}

/**
 * An upsert that never moves a stored position back, nor clears a stale mark, unfenced: for
 * callers without a lease (the tools, a compaction marking a consumer stale). A stale mark that
 * is not stored (the stored position is further on) rejects.
 */
export function saveConsumer(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  record: ConsumerRecord,
): Promise<void> {
  return withClient(pool, where, async (client) => {
    if (!(await ensureConsumersTable(client, t))) {
      if (record.stale !== undefined)
        throw new Error(
          `${consumersTable(t)} has no stale column and this role cannot add it (ALTER TABLE ${consumersTable(t)} ADD COLUMN stale text, as its owner)`,
        );
      await client.query(
        `INSERT INTO ${consumersTable(t)} AS c (log, name, position, parked) VALUES ($1, $2, $3, $4)
         ON CONFLICT (log, name) DO UPDATE SET position = excluded.position, parked = excluded.parked
         WHERE c.position <= excluded.position`,
        [log, record.name, record.position, JSON.stringify(record.parked)],
      );
      return;
    }
    const stale = record.stale === undefined ? null : JSON.stringify(record.stale);
    const r = await client.query(
      `INSERT INTO ${consumersTable(t)} AS c (log, name, position, parked, stale) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (log, name) DO UPDATE SET position = excluded.position, parked = excluded.parked, stale = excluded.stale
       WHERE c.position <= excluded.position AND (c.stale IS NULL OR excluded.stale IS NOT NULL)`,
      [log, record.name, record.position, JSON.stringify(record.parked), stale],
    );
    if ((r.rowCount ?? 1) > 0) return;
    // A stale mark for a position the consumer has since moved past (it checkpointed after the
    // compaction loaded the records): not stored, so the compaction must not act on it; it keeps
    // the consumer's events, and the next one judges the consumer from where it is now.
    if (stale !== null)
      throw new Error(
        `consumer ${JSON.stringify(record.name)} moved past position ${record.position} while a compaction marked it stale: not marked`,
      );
    await refuseIfStale(client, t, log, record.name);
  });
}

/**
 * The upsert of a lease's holder, fenced by its epoch: it stores nothing (and resolves with
 * false) unless the name's lease row still carries `epoch`. The row is locked FOR SHARE for the
 * statement, so a takeover's epoch bump (an UPDATE of that row) waits for a save in flight to
 * commit, and a save that comes after the bump re-reads the row and finds another epoch: the
 * next holder, which loads the record after its bump, sees every save of the last one that
 * will ever land.
 */
export function saveFenced(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  record: ConsumerRecord,
  epoch: number,
): Promise<boolean> {
  return withClient(pool, where, async (client) => {
    const staleColumn = await ensureConsumersTable(client, t);
    // A holder's save carries no stale mark: with the column, it never overwrites one.
    const r = await client.query(
      `WITH fence AS (
         SELECT 1 FROM ${leasesTable(t)} WHERE log = $1 AND name = $2 AND epoch = $5 FOR SHARE
       ), stored AS (
         INSERT INTO ${consumersTable(t)} AS c (log, name, position, parked)
         SELECT $1::text, $2::text, $3::bigint, $4::text FROM fence
         ON CONFLICT (log, name) DO UPDATE SET position = excluded.position, parked = excluded.parked
         WHERE c.position <= excluded.position${staleColumn ? ' AND c.stale IS NULL' : ''}
         RETURNING 1
       )
       SELECT EXISTS (SELECT 1 FROM fence) AS held, EXISTS (SELECT 1 FROM stored) AS stored`,
      [log, record.name, record.position, JSON.stringify(record.parked), epoch],
    );
    const { held, stored } = r.rows[0] as { held: boolean; stored: boolean };
    if (held && !stored && staleColumn) await refuseIfStale(client, t, log, record.name);
    return held;
  });
}

/**
 * A new holder's epoch for `name` (1 the first time), on the session that holds the name's
 * lock: only the holder bumps it, so epochs of one name are handed out one holder at a time.
 */
export async function bumpEpoch(client: PgClientLike, t: Tables, log: string, name: string): Promise<number> {
  await ensureTable(client, leasesTable(t), LEASES_COLUMNS);
  const r = await client.query(
    `INSERT INTO ${leasesTable(t)} AS l (log, name, epoch) VALUES ($1, $2, 1)
     ON CONFLICT (log, name) DO UPDATE SET epoch = l.epoch + 1
     RETURNING epoch::float8 AS epoch`,
    [log, name],
  );
  return Number((r.rows[0] as { epoch: number }).epoch);
}

const CONSUMERS_COLUMNS =
  'log text NOT NULL, name text NOT NULL, position bigint NOT NULL, parked text NOT NULL, stale text, PRIMARY KEY (log, name)';
const LEASES_COLUMNS =
  'log text NOT NULL, name text NOT NULL, epoch bigint NOT NULL, PRIMARY KEY (log, name)';

function leasesTable(t: Tables): string {
  return `"${t.schema}".consumer_leases`;
}

/**
 * Makes `table` when it is missing. Looked up first, so that a role without CREATE works on
 * tables an administrator made; two sessions making it at once race in the catalogue (a
 * unique violation, or "already exists"), and the one that lost finds it made.
 */
async function ensureTable(client: PgClientLike, table: string, columns: string): Promise<void> {
  const r = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [table]);
  if ((r.rows[0] as { found: boolean }).found) return;
  await client.query(`CREATE TABLE IF NOT EXISTS ${table} (${columns})`).catch((err: unknown) => {
    const code = (err as { code?: unknown } | null)?.code;
    if (code !== '23505' && code !== '42P07') throw err;
  });
}

export function deleteConsumer(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  name: string,
): Promise<boolean> {
  return withClient(pool, where, async (client) => {
    if (!(await tableExists(client, t))) return false;
    const r = await client.query(`DELETE FROM ${consumersTable(t)} WHERE log = $1 AND name = $2`, [
      log,
      name,
    ]);
    return (r.rowCount ?? 0) > 0;
  });
}

/**
 * A reaction's positions, on the writer's connection inside the transaction that inserts the
 * reaction's rows (see `PgWriter`): both commit or neither. A position never moves back
 * (GREATEST), and the parked events stay. The table exists: the App stores a consumer's record
 * before the consumer runs.
 *
 * Fenced as a holder's save is (`saveFenced`): a position with an epoch moves only while the
 * name's lease row still carries it, locked FOR SHARE until the commit, so a takeover's bump
 * waits for this transaction, and a reaction decided by a holder deposed meanwhile refuses the
 * whole batch (ConsumerError; the caller rolls back): its events never commit, and the next
 * holder reacts to that event itself. Exactly once in the log, with any number of instances.
 */
export async function saveReactionPositions(
  client: PgClientLike,
  t: Tables,
  log: string,
  positions: readonly FencedPosition[],
): Promise<void> {
  // One row per name, at its highest position: an UPDATE … FROM with two rows for one target
  // would use either of them.
  const byName = new Map<string, FencedPosition>();
  for (const p of positions) {
    const had = byName.get(p.name);
    if (had === undefined || had.position < p.position) byName.set(p.name, p);
  }
  const rows = [...byName.values()];
  const fenced = rows.some((p) => p.epoch !== null);
  const r = await client.query(
    `${fenced ? `WITH fence AS (SELECT l.name FROM ${leasesTable(t)} AS l JOIN unnest($2::text[], $4::bigint[]) AS f(name, epoch) ON l.name = f.name AND l.epoch = f.epoch WHERE l.log = $1 FOR SHARE OF l) ` : ''}UPDATE ${consumersTable(t)} AS c SET position = GREATEST(c.position, r.position)
     FROM unnest($2::text[], $3::bigint[], $4::bigint[]) AS r(name, position, epoch)
     WHERE c.log = $1 AND c.name = r.name${fenced ? ' AND (r.epoch IS NULL OR r.name IN (SELECT name FROM fence))' : ''}`,
    [log, rows.map((p) => p.name), rows.map((p) => p.position), rows.map((p) => p.epoch)],
  );
  if ((r.rowCount ?? rows.length) < rows.length)
    throw new ConsumerError(
      rows.map((p) => p.name).join(', '),
      'lost its name to another instance (or its record) before its reaction committed: the reaction is not appended',
    );
}
