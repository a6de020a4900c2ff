import {
  type ConsumerRecord,
  type EventGroup,
  LogCompactedError,
  type ParkedEvent,
  StaleConsumerError,
  type StaleMark,
} from '../../src/index';
import { EVENT_ROW_COLUMNS, type EventRow, groupsOfRows } from '../common/row-groups';
import { persistenceError } from './connection';
import type { PgClientLike, PgPoolLike } from './driver';
import { inSnapshot, parse, readHeadRow } from './replay';
import type { Tables } from './schema';

/*
 * Durable consumers on PostgreSQL. `read` is a keyset query on the events' primary key in a
 * REPEATABLE READ transaction of its own (never the writer's connection), so it sees committed
 * groups only, whole. The records are rows of `<schema>.consumers`, one per (log, name), made by
 * the first save (CREATE TABLE IF NOT EXISTS: an administrator may make it beforehand for a role
 * without CREATE); the schema version does not move, so older appendonly code shares the log.
 *
 * Limit, for now: nothing stops two instances from running one consumer name on one log at
 * once (single holder by advisory lock, with fenced checkpoints, comes later). A save never
 * moves a stored position back, so the worst case is an event handled by both (at-least-once
 * still holds), never a skipped one.
 *
 * The `stale` column (JSON of a compaction's `StaleMark`; NULL: not stale) came after the table:
 * a table made before gets it at the first save (`ADD COLUMN IF NOT EXISTS`, the table owner's
 * right, a catalog change only); until then a load reads every record as not stale. Older code
 * names its columns, so it reads and writes around it.
 */

function consumersTable(t: Tables): string {
  return `"${t.schema}".consumers`;
}

/** The groups holding events after `after`, whole, up to about `limit` events (see `EventStore.read`). */
export async function readGroups(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  after: number,
  limit: number,
): Promise<EventGroup[]> {
  let out: EventGroup[] = [];
  await inSnapshot(pool, where, async (client) => {
    const head = await readHeadRow(client, t, log, where);
    const first = await client.query(
      `SELECT max(seq)::float8 AS seq FROM ${t.events} WHERE log = $1 AND seq <= $2 AND n > 0`,
      [log, after + 1],
    );
    const at = (first.rows[0] as { seq: number | null } | undefined)?.seq;
    const start = at === null || at === undefined ? after + 1 : Number(at);
    for (let rowsWanted = limit + 64; ; rowsWanted *= 2) {
      const rows = (
        await client.query({
          text: `SELECT ${EVENT_ROW_COLUMNS} FROM ${t.events} WHERE log = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
          values: [log, start, rowsWanted],
          rowMode: 'array',
        })
      ).rows as EventRow[];
      // Below the snapshot the rows may be gone (compacted); a store keeping history still has them.
      if (after < head.snapshotSeq && (rows.length === 0 || Number(rows[0][0]) > after + 1))
        throw new LogCompactedError(
          after,
          rows.length === 0 ? head.snapshotSeq + 1 : Number(rows[0][0]),
          where,
        );
      const groups = groupsOfRows(rows, where, limit, (text, seq) => parse(text, where, seq));
      if (groups.length > 0 || rows.length < rowsWanted) {
        out = groups.filter((g) => g.seq + g.events.length - 1 > after);
        return;
      }
    }
  });
  return out;
}

async function withClient<T>(
  pool: PgPoolLike,
  where: string,
  work: (client: PgClientLike) => Promise<T>,
): Promise<T> {
  const client = await pool.connect().catch((err: unknown) => {
    throw persistenceError(`cannot reach ${where}`, err);
  });
  const ignore = () => {};
  client.on('error', ignore);
  let broken = false;
  try {
    return await work(client);
  } catch (err) {
    if (err instanceof StaleConsumerError) throw err;
    broken = true;
    throw persistenceError(`consumers of ${where}`, err);
  } finally {
    client.removeListener('error', ignore);
    client.release(broken);
  }
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
 * An upsert that never moves a stored position back (see the limit above), nor clears a stale
 * mark: a save without `stale` of a row marked stale changes nothing and is refused with
 * `StaleConsumerError` (see `EventStore.saveConsumer`).
 */
export function saveConsumer(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  record: ConsumerRecord,
): Promise<void> {
  return withClient(pool, where, async (client) => {
    const shape = await tableShape(client, t);
    if (!shape.found) {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${consumersTable(t)} (log text NOT NULL, name text NOT NULL, position bigint NOT NULL, parked text NOT NULL, stale text, PRIMARY KEY (log, name))`,
      );
    } else if (!shape.stale) {
      const added = await client
        .query(`ALTER TABLE ${consumersTable(t)} ADD COLUMN IF NOT EXISTS stale text`)
        .then(
          () => true,
          () => false,
        );
      if (!added) {
        // A role without the owner's right: positions are saved as before; a stale mark cannot
        // be, so the compaction that wanted it keeps the consumer's events (retainForConsumers).
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
    }
    const stale = record.stale === undefined ? null : JSON.stringify(record.stale);
    const r = await client.query(
      `INSERT INTO ${consumersTable(t)} AS c (log, name, position, parked, stale) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (log, name) DO UPDATE SET position = excluded.position, parked = excluded.parked, stale = excluded.stale
       WHERE c.position <= excluded.position AND (c.stale IS NULL OR excluded.stale IS NOT NULL)`,
      [log, record.name, record.position, JSON.stringify(record.parked), stale],
    );
    if ((r.rowCount ?? 1) > 0 || stale !== null) return;
    const held = await client.query(`SELECT stale FROM ${consumersTable(t)} WHERE log = $1 AND name = $2`, [
      log,
      record.name,
    ]);
    const mark = (held.rows[0] as { stale: string | null } | undefined)?.stale;
    if (typeof mark === 'string')
      throw new StaleConsumerError(
        record.name,
        `a compaction at seq ${(JSON.parse(mark) as StaleMark).seq} marked it stale`,
      );
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
