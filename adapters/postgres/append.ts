import type { ConsumerPosition, EventGroup, FsyncPolicy } from '../../src/index';
import {
  type PgClientLike,
  type PgResult,
  type PreparedStatement,
  preparedStatement,
  queryNamed,
} from './driver';
import { quoteLiteral } from './replay';
import { FLUSH_BARRIER } from './flush';
import type { Tables } from './schema';
import { SYNCHRONOUS_COMMIT } from './synchronous-commit';

/** The rows of one batch of appends, in columns (one array per column: one statement, any size). */
export interface BatchRows {
  /** The batch's id, stored on each of its rows: how a writer that lost its answer finds out. */
  readonly id: string;
  /** The first sequence number of the batch; the head must be at `firstSeq - 1`. */
  readonly firstSeq: number;
  /** The last sequence number of the batch: the head once it committed. */
  lastSeq: number;
  readonly times: number[];
  readonly types: string[];
  readonly data: string[];
  readonly sizes: number[];
  /** The envelope columns: the event's id, version (null: 1), its command's metadata JSON on the first row. */
  readonly ids: (string | null)[];
  readonly versions: (number | null)[];
  readonly metadata: (string | null)[];
  /** Characters of event data in the batch. */
  bytes: number;
  /**
   * The reactions' consumer positions, committed in the batch's transaction, each with the epoch
   * of the lease its consumer held when it reacted (null: a store without holders' leases).
   */
  readonly reactions: FencedPosition[];
}

/** A reaction's consumer position and the epoch that fences it (see `saveReactionPositions`). */
export interface FencedPosition extends ConsumerPosition {
  readonly epoch: number | null;
}

/** An empty batch starting at `firstSeq`. */
export function newRows(id: string, firstSeq: number): BatchRows {
  return {
    id,
    firstSeq,
    lastSeq: firstSeq - 1,
    times: [],
    types: [],
    data: [],
    sizes: [],
    ids: [],
    versions: [],
    metadata: [],
    bytes: 0,
    reactions: [],
  };
}

/**
 * Adds one command's events (serialised now, so that a later change to them cannot leak in);
 * `epoch`, for a reaction's group, is its consumer's lease epoch.
 */
export function addGroup(rows: BatchRows, group: EventGroup, epoch?: number): void {
  const { events, ids, versions } = group;
  const metadata = group.metadata === undefined ? null : JSON.stringify(group.metadata);
  for (let i = 0; i < events.length; i++) {
    rows.ids.push(ids?.[i] ?? null);
    rows.versions.push(versions?.[i] ?? null);
    rows.metadata.push(i === 0 ? metadata : null);
    rows.times.push(group.time);
    rows.types.push(events[i].type);
    const data = JSON.stringify(events[i].data);
    rows.data.push(data);
    rows.bytes += data.length;
    rows.sizes.push(i === 0 ? events.length : 0);
  }
  rows.lastSeq = group.seq + events.length - 1;
  if (group.consumer !== undefined) rows.reactions.push({ ...group.consumer, epoch: epoch ?? null });
}

/** The append in two forms: `one` for a batch of one row, `many` for any batch. */
export interface AppendStatements {
  readonly one: PreparedStatement;
  readonly many: PreparedStatement;
}

/**
 * The append, one statement in its own implicit transaction (one round trip): the head row
 * moves from `firstSeq - 1` to `lastSeq` and the rows are inserted, or, when another writer
 * moved the head first, neither happens and no row is inserted. Concurrent appenders queue on
 * the head row's lock; the one that waited re-reads the row after the first commits, finds it
 * moved, and inserts nothing: so seq order is commit order, with no gap.
 *
 * The policy's `synchronous_commit` holds for this transaction's COMMIT: where the session already
 * has it (the writer's, pinned under `always`: see `pinSynchronousCommit`), nothing is set; else
 * `set_config(…, true)`, `SET LOCAL` inside the statement, sets it for this transaction only.
 * Checked in the statement, on the session it runs on, so that nothing rests on what the store
 * believes of the session (a pooler in transaction mode hands each statement another one).
 * Setting it in every append made a one-row append 6–9 % slower; the check costs nothing
 * measurable (bench scratch, 20 ms slices shuffled: 2,453 set, 2,610 checked, 2,607 neither).
 *
 * Prepared (named, see {@link preparedStatement}): parsing and planning this statement each time
 * cost more than running it (a one-row append measured 0.22× a plain one-row INSERT unprepared,
 * 0.86× prepared, on this project's benchmark machine).
 *
 * A batch of one row (a command of one event, one command in flight: the common case of a
 * lightly loaded app) takes `one`, the same statement with scalar parameters: for one row, the
 * arrays (pg's array literals built, sent and parsed, unnest run) cost a fifth of the append
 * (measured on 2 cores: a one-row append went from 0.66× to 0.75× a plain INSERT's rate).
 */
export function appendStatements(t: Tables): AppendStatements {
  const moved = `WITH policy AS (SELECT CASE WHEN current_setting('synchronous_commit') = $2 THEN $2
      ELSE set_config('synchronous_commit', $2, true) END AS v),
    moved AS (
      UPDATE ${t.heads} SET seq = $4, batch = $5
      WHERE log = $1 AND seq = $3 AND (SELECT v FROM policy) IS NOT NULL
      RETURNING seq)
    INSERT INTO ${t.events} (log, seq, time, type, data, n, batch, id, version, metadata)`;
  return {
    one: preparedStatement(
      'append',
      `${moved}
    SELECT $1, $4, $6::bigint, $7::text, $8::text, $9::integer, $5, $10::text, $11::integer, $12::text FROM moved`,
    ),
    many: preparedStatement(
      'append',
      `${moved}
    SELECT $1, $3 + e.ord, e.time, e.type, e.data, e.n, $5, e.id, e.version, e.metadata
    FROM moved, unnest($6::bigint[], $7::text[], string_to_array($8, E'\n'), $9::integer[], $10::text[], $11::integer[],
        string_to_array($12, E'\n', '')) WITH ORDINALITY AS e(time, type, data, n, id, version, metadata, ord)`,
    ),
  };
}

/** Runs the append; true when it landed, false when the head had moved (a conflict). */
export async function insertBatch(
  client: PgClientLike,
  statements: AppendStatements,
  log: string,
  policy: FsyncPolicy,
  rows: BatchRows,
): Promise<boolean> {
  const statement = statementFor(statements, rows);
  const { rowCount } = await queryNamed(client, {
    name: statement.name,
    text: statement.text,
    values: valuesOf(log, policy, rows),
  });
  // It ran: pg has prepared it on this connection (see insertAndCommit).
  preparedOn(client).add(statement.name);
  return (rowCount ?? 0) > 0;
}

function statementFor(statements: AppendStatements, rows: BatchRows): PreparedStatement {
  return rows.data.length === 1 ? statements.one : statements.many;
}

/**
 * The statement's parameters, in the order of {@link appendStatements}. The columns go as pg
 * array literals written here rather than as JS arrays for pg to write: pg quotes and escapes
 * every element with two regex passes, numbers included (measured on a 64-row batch of Deposit
 * events, 80 → 50 µs of the batch's serialisation, which sits in series with the round trip).
 * The JSON columns (event data, metadata) go as one text each, the rows' JSON joined by newlines,
 * which the statement splits (`string_to_array`): see {@link jsonLines}. Measured on the same
 * batch with event ids, on 2 loaded cores: the seven columns 72–100 → 12–25 µs.
 */
function valuesOf(log: string, policy: FsyncPolicy, rows: BatchRows): unknown[] {
  const one = rows.data.length === 1;
  return [
    log,
    SYNCHRONOUS_COMMIT[policy],
    rows.firstSeq - 1,
    rows.lastSeq,
    rows.id,
    one ? rows.times[0] : arrayLiteral(rows.times),
    one ? rows.types[0] : arrayLiteral(rows.types),
    // Never null: no row of `data` is empty, so no null marker.
    one ? rows.data[0] : rows.data.join('\n'),
    one ? rows.sizes[0] : arrayLiteral(rows.sizes),
    one ? rows.ids[0] : arrayLiteral(rows.ids),
    one ? rows.versions[0] : arrayLiteral(rows.versions),
    one ? rows.metadata[0] : jsonLines(rows.metadata),
  ];
}

/** The names of the append statements pg has prepared on each connection (it keeps them for the session). */
const prepared = new WeakMap<PgClientLike, Set<string>>();

function preparedOn(client: PgClientLike): Set<string> {
  let names = prepared.get(client);
  if (names === undefined) {
    names = new Set();
    prepared.set(client, names);
  }
  return names;
}

/**
 * The append and the COMMIT of the transaction it runs in (the head lock's, see HeadLock), in
 * one round trip: `EXECUTE` of the prepared statement and `COMMIT`, one simple-protocol query.
 * Every other appender waits on the head row until this COMMIT, so a round trip saved here is
 * saved for all of them (on a loaded 2-core machine, the separate COMMIT took 5 ms of a 15 ms
 * turn). The simple protocol takes no parameters: they go in as literals, written as pg writes
 * its parameters (arrays in pg's array syntax), so the server parses the same text either way.
 * When the statement is not prepared on this connection yet (a connection taken since the last
 * append), it is run on its own, preparing it, and the COMMIT follows in a second round trip.
 *
 * `flushOutside` (under `always`): the append's own `set_config` (LOCAL: the lock's
 * transaction) says `off`, and the flush barrier follows the COMMIT, so that the lock is not
 * held through the flush.
 */
export async function insertAndCommit(
  client: PgClientLike,
  statements: AppendStatements,
  log: string,
  policy: FsyncPolicy,
  rows: BatchRows,
  flushOutside: boolean,
): Promise<boolean> {
  const commitAs = flushOutside && policy === 'always' ? 'everysec' : policy;
  const commit = commitAs === policy ? 'COMMIT' : `COMMIT; ${FLUSH_BARRIER}`;
  const statement = statementFor(statements, rows);
  if (!preparedOn(client).has(statement.name)) {
    const ok = await insertBatch(client, statements, log, commitAs, rows);
    await client.query(commit);
    return ok;
  }
  // One result per statement; the append's is first.
  const args = valuesOf(log, commitAs, rows).map(literal).join(', ');
  const results = (await client.query(
    `EXECUTE ${statement.name}(${args}); ${commit}`,
  )) as unknown as PgResult[];
  return (results[0].rowCount ?? 0) > 0;
}

/** A parameter as an SQL literal: NULL, a number, or a quoted string (the arrays come as their literals' text). */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
    return String(value);
  }
  return quoteLiteral(String(value));
}

/**
 * pg's array syntax for a flat array of strings, numbers and nulls. Numbers (integers: times,
 * sizes, versions) need no quotes; strings are double-quoted with backslash and `"` escaped, as pg's
 * `prepareValue` writes them. The server parses either form to the same array. A string with
 * neither (event ids, type names: nearly all) skips the regex: two `indexOf` cost a tenth of a
 * `replace` call, which was half of this function's time on a 64-row batch.
 */
function arrayLiteral(values: readonly (string | number | null)[]): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    if (i > 0) out += ',';
    const v = values[i];
    out +=
      v === null
        ? 'NULL'
        : typeof v === 'number'
          ? String(v)
          : v.indexOf('"') < 0 && v.indexOf('\\') < 0
            ? `"${v}"`
            : `"${v.replace(/[\\"]/g, '\\$&')}"`;
  }
  return `${out}}`;
}

/**
 * `JSON.stringify` outputs (event data, metadata) as one text, one per line, null as an empty
 * line, for the statement's `string_to_array(…, E'\n', '')`. Invariant: such text holds no raw
 * control character (stringify writes U+0000–U+001F as escapes), so no newline inside a row;
 * and it is never empty (`""` at the least), so an empty line can only be a null. A batch of
 * `many` has two rows or more: the text holds a newline, never reads as an empty array. Any
 * other string must go through {@link arrayLiteral}. Joined natively, with nothing escaped:
 * the pg array literal needed every quote of the JSON backslashed (`JSON.stringify` of it again).
 */
function jsonLines(values: readonly (string | null)[]): string {
  for (let i = 0; i < values.length; i++)
    if (values[i] !== null) return values.map((v) => v ?? '').join('\n');
  // No metadata in the batch (the common case): only the separators.
  return '\n'.repeat(values.length - 1);
}

/** Whether the batch `rows` is in the log: its first row carries its id. */
export async function landed(
  client: PgClientLike,
  t: Tables,
  log: string,
  rows: BatchRows,
): Promise<boolean> {
  const { rows: found } = await client.query(
    `SELECT batch::text AS batch FROM ${t.events} WHERE log = $1 AND seq = $2`,
    [log, rows.firstSeq],
  );
  return (found[0] as { batch?: string } | undefined)?.batch === rows.id;
}

/** What the log holds at `seq` now: the batch that wrote it (null: no row), the head, the snapshot. */
export async function appliedNow(
  client: PgClientLike,
  t: Tables,
  log: string,
  seq: number,
): Promise<{ batch: string | null; head: number; snapshotSeq: number }> {
  const { rows } = await client.query(
    `SELECT h.seq::float8 AS head, h.snapshot_seq::float8 AS snapshot_seq,
       (SELECT e.batch::text FROM ${t.events} e WHERE e.log = $1 AND e.seq = $2) AS batch
     FROM ${t.heads} h WHERE h.log = $1`,
    [log, seq],
  );
  const row = rows[0] as { head: number; snapshot_seq: number; batch: string | null } | undefined;
  return { batch: row?.batch ?? null, head: row?.head ?? 0, snapshotSeq: row?.snapshot_seq ?? 0 };
}

/** The log's head now. */
export async function readHead(client: PgClientLike, t: Tables, log: string): Promise<number> {
  const { rows } = await client.query(`SELECT seq::float8 AS seq FROM ${t.heads} WHERE log = $1`, [log]);
  return (rows[0] as { seq?: number } | undefined)?.seq ?? 0;
}
