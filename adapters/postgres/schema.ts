import type { PgClientLike } from './driver';
import { IncompatibleSchemaError } from './errors';

/**
 * The schema this code writes and reads; bumped on any change. 2: the envelope columns `id`,
 * `version`, `metadata` of `events` (nullable, added by `migrateEnvelope`); `writable_by`
 * stays 1, because code of schema 1 names its columns in its INSERT and SELECT, so it keeps
 * appending (rows without envelope: no id, version 1, no metadata, which is what its events are)
 * and reading (it ignores the columns) during a rolling deploy.
 */
export const SCHEMA_VERSION = 2;
/** `meta.format`: tells our tables from anyone else's of the same names. */
export const FORMAT = 'appendonly-postgres';

const TABLES = ['meta', 'heads', 'events', 'snapshot'] as const;

/**
 * The tables the durable consumers make at their first use (`consumers.ts`), and the columns
 * they read and write: one of these names with other columns is someone else's table.
 */
const CONSUMER_TABLES: Readonly<Record<string, readonly string[]>> = {
  consumers: ['log', 'name', 'position', 'parked'],
  consumer_leases: ['log', 'name', 'epoch'],
};

/** The store's tables in `schema`, quoted once: every statement of the store uses these names. */
export interface Tables {
  readonly schema: string;
  readonly meta: string;
  readonly heads: string;
  readonly events: string;
  readonly snapshot: string;
}

/** `schema` is a plain identifier (checked by the options): quoting it is enough. */
export function tablesOf(schema: string): Tables {
  const q = `"${schema}"`;
  return { schema, meta: `${q}.meta`, heads: `${q}.heads`, events: `${q}.events`, snapshot: `${q}.snapshot` };
}

/**
 * The tables. One row per event, so that `psql` reads the log as it is; `n` is the size of the
 * command's group on its first row and 0 on the others (a replay tells a whole group from a
 * torn one); `batch` is the id of the append that wrote the row, which a writer that lost its
 * connection during COMMIT looks up to know whether the append landed.
 *
 * `heads` holds one row per log: `seq` is the last sequence number committed. An append moves it
 * from the position it expects in the statement that inserts the rows, so that positions never
 * come from a sequence (a rolled-back `nextval` leaves a hole, and a reader can see seq 11 commit
 * before seq 10): the row lock orders the writers, seq order is commit order, and the numbers
 * stay dense. `snapshot_seq` / `snapshot_id` name the snapshot a compaction wrote (0: none).
 *
 * The envelope (schema 2): `id` the event's id (NULL for an event logged without one),
 * `version` its data's version (NULL: 1), `metadata` its command's metadata as JSON on the
 * group's first row (NULL: none); `time` is in ms on every row.
 */
function createStatements(t: Tables, schemaExists: boolean): string[] {
  return [
    // PostgreSQL checks the database's CREATE right before IF NOT EXISTS: a schema an
    // administrator made for the role (CREATE SCHEMA … AUTHORIZATION app) is not made again.
    ...(schemaExists ? [] : [`CREATE SCHEMA "${t.schema}"`]),
    `CREATE TABLE ${t.meta} (key text PRIMARY KEY, value text NOT NULL)`,
    `CREATE TABLE ${t.heads} (log text PRIMARY KEY, seq bigint NOT NULL, batch uuid,
       snapshot_seq bigint NOT NULL DEFAULT 0, snapshot_id bigint NOT NULL DEFAULT 0)`,
    `CREATE TABLE ${t.events} (log text NOT NULL, seq bigint NOT NULL, time bigint NOT NULL,
       type text NOT NULL, data text NOT NULL, n integer NOT NULL, batch uuid NOT NULL,
       id text, version integer, metadata text,
       PRIMARY KEY (log, seq))`,
    `CREATE TABLE ${t.snapshot} (log text NOT NULL, id bigint NOT NULL, ord integer NOT NULL,
       key text NOT NULL, value text NOT NULL, PRIMARY KEY (log, id, ord))`,
    // `writable_by`: the oldest schema version of appendonly that may still write these tables;
    // raised only by an explicit migration, so that old and new code share a log during a deploy.
    `INSERT INTO ${t.meta} (key, value) VALUES ('format', '${FORMAT}'),
       ('schema_version', '${SCHEMA_VERSION}'), ('writable_by', '1')`,
  ];
}

/**
 * Uses the store's tables in `schema`, creating them when none is there. Tables made beforehand
 * by an administrator are used as they are, so the application's role needs no CREATE right;
 * a table of one of our names that is not ours is refused and never touched. Two instances
 * opening a fresh database at once are serialised by an advisory lock. Returns true if created.
 */
export async function ensureSchema(client: PgClientLike, t: Tables): Promise<boolean> {
  await checkConsumerTables(client, t);
  if ((await ourTablesIn(client, t.schema)).length > 0) {
    await checkSchema(client, t);
    await migrateEnvelope(client, t);
    return false;
  }
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`appendonly schema ${t.schema}`]);
    if ((await ourTablesIn(client, t.schema)).length > 0) {
      await client.query('ROLLBACK');
      await checkSchema(client, t);
      await migrateEnvelope(client, t);
      return false;
    }
    const { rows } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [t.schema]);
    for (const statement of createStatements(t, rows.length > 0)) await client.query(statement);
    await client.query('COMMIT');
    return true;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** The statements that bring a schema-1 `events` table to schema 2: what an owner runs when the application's role may not. */
export function envelopeMigration(t: Tables): string[] {
  return [
    `ALTER TABLE ${t.events} ADD COLUMN IF NOT EXISTS id text, ADD COLUMN IF NOT EXISTS version integer, ADD COLUMN IF NOT EXISTS metadata text`,
    `UPDATE ${t.meta} SET value = '${SCHEMA_VERSION}' WHERE key = 'schema_version' AND value::integer < ${SCHEMA_VERSION}`,
  ];
}

/**
 * Adds the envelope columns to a schema-1 log, once (the first instance of the new release to
 * open it; the others find them). Nullable columns without a default: PostgreSQL changes only
 * its catalog, no row is rewritten, whatever the size of the log. The ALTER takes an ACCESS
 * EXCLUSIVE lock on `events`: with `lock_timeout` it gives up after 5 s rather than queue
 * behind a long reader while every append queues behind it, and the open fails (the next one
 * tries again). A role without the right (not the owner) cannot: the open fails with
 * {@link IncompatibleSchemaError} giving the statements to run as the owner. It must not go on
 * without the columns: an event of version 2 logged without its version would read back as 1
 * and be upcast again.
 */
async function migrateEnvelope(client: PgClientLike, t: Tables): Promise<void> {
  const { rows } = await client.query(
    `SELECT count(*)::int AS n FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
     JOIN pg_namespace s ON s.oid = c.relnamespace
     WHERE s.nspname = $1 AND c.relname = 'events' AND a.attname IN ('id', 'version', 'metadata') AND NOT a.attisdropped`,
    [t.schema],
  );
  // Number(): an application's process-wide int4 parser (BigInt, say) reaches this query.
  if (Number((rows[0] as { n: unknown }).n) === 3) return;
  const statements = envelopeMigration(t);
  await client.query('BEGIN');
  try {
    await client.query("SET LOCAL lock_timeout = '5s'");
    for (const statement of statements) await client.query(statement);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    if ((err as { code?: unknown }).code === '42501')
      throw new IncompatibleSchemaError(
        t.schema,
        `has schema version 1 and this role may not add the envelope columns (event ids, versions, metadata); ` +
          `run as the tables' owner: ${statements.join('; ')}`,
      );
    throw err;
  }
}

/** Which of our table names exist in `schema`. */
async function ourTablesIn(client: PgClientLike, schema: string): Promise<string[]> {
  const { rows } = await client.query(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = ANY($2) ORDER BY 1`,
    [schema, [...TABLES]],
  );
  return (rows as { name: string }[]).map((r) => r.name);
}

/**
 * A `consumers` or `consumer_leases` table that is not ours is refused at open, before anything
 * is made next to it: the consumers would otherwise fail at their first save, and the compaction
 * after its switch (it reads the records to keep their events), or alter the table.
 */
async function checkConsumerTables(client: PgClientLike, t: Tables): Promise<void> {
  const { rows } = await client.query(
    `SELECT c.relname AS name, array_agg(a.attname::text ORDER BY a.attnum) AS columns
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relname = ANY($2) GROUP BY c.relname ORDER BY 1`,
    [t.schema, Object.keys(CONSUMER_TABLES)],
  );
  for (const { name, columns } of rows as { name: string; columns: string[] }[]) {
    const missing = CONSUMER_TABLES[name].filter((c) => !columns.includes(c));
    if (missing.length > 0)
      throw new IncompatibleSchemaError(
        t.schema,
        `has a ${name} table that is not appendonly’s (columns: ${columns.join(', ')}; no ${missing.join(', ')}); refusing to touch it: choose another schema`,
      );
  }
}

/** A foreign or newer schema is refused, never altered: it may hold someone's data. */
async function checkSchema(client: PgClientLike, t: Tables): Promise<void> {
  const found = await ourTablesIn(client, t.schema);
  const foreign = (why: string) =>
    new IncompatibleSchemaError(
      t.schema,
      `${why} (tables found: ${found.join(', ')}); refusing to touch it: choose another schema`,
    );
  if (!found.includes('meta')) throw foreign('is not an appendonly store');
  let meta: Map<string, string>;
  try {
    const { rows } = await client.query(`SELECT key, value FROM ${t.meta}`);
    meta = new Map((rows as { key: string; value: string }[]).map((r) => [r.key, r.value]));
  } catch {
    throw foreign('has a meta table that is not appendonly’s');
  }
  if (meta.get('format') !== FORMAT) throw foreign('has a meta table that is not appendonly’s');
  const version = Number(meta.get('schema_version'));
  const writableBy = Number(meta.get('writable_by') ?? version);
  if (!Number.isInteger(version) || version < 1)
    throw new IncompatibleSchemaError(
      t.schema,
      `has an unknown schema version ${meta.get('schema_version')}`,
    );
  if (writableBy > SCHEMA_VERSION) {
    throw new IncompatibleSchemaError(
      t.schema,
      `was migrated for appendonly schema version ${writableBy} and later (this version writes ${SCHEMA_VERSION}): upgrade appendonly`,
    );
  }
  const missing = TABLES.filter((name) => !found.includes(name));
  if (missing.length > 0)
    throw new IncompatibleSchemaError(
      t.schema,
      `is an appendonly store without its ${missing.join(', ')} table(s)`,
    );
}

/**
 * The `meta` key of a log's snapshot projections version. Its value is JSON,
 * `{"snapshot_id": <id>, "projections_version": "<version>"}`: the version of the snapshot the
 * head row names, standing only while `heads.snapshot_id` is that id.
 *
 * A row of `meta` rather than a column of `heads`: no ALTER TABLE of a live log (which would need
 * the tables' owner and an ACCESS EXCLUSIVE lock on the table whose row every append updates),
 * so the schema version stays 1, a role that may only read and write rows keeps working, and old
 * and new code share one log during a deploy. Code that does not know the row compacts without touching
 * it: the new snapshot's id differs from the one named, so it reads as unversioned, never as the
 * version of the snapshot it replaced.
 */
export function projectionsVersionKey(log: string): string {
  return `projections_version:${log}`;
}

/** The version a {@link projectionsVersionKey} row gives the snapshot `snapshotId`, or undefined. */
export function parseProjectionsVersion(
  value: string | null | undefined,
  snapshotId: number,
): string | undefined {
  if (value === null || value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as { snapshot_id?: unknown; projections_version?: unknown };
    if (parsed.snapshot_id === snapshotId && typeof parsed.projections_version === 'string')
      return parsed.projections_version;
  } catch {
    // A row edited by hand into something else: the snapshot is unversioned.
  }
  return undefined;
}

/** The value of a {@link projectionsVersionKey} row for snapshot `snapshotId` of `version`. */
export function projectionsVersionValue(snapshotId: number, version: string): string {
  return JSON.stringify({ snapshot_id: snapshotId, projections_version: version });
}

/** Makes sure `log` has its head row; true when this call made it (a new log). */
export async function ensureLog(client: PgClientLike, t: Tables, log: string): Promise<boolean> {
  const { rowCount } = await client.query(
    `INSERT INTO ${t.heads} (log, seq) VALUES ($1, 0) ON CONFLICT (log) DO NOTHING`,
    [log],
  );
  return rowCount === 1;
}
