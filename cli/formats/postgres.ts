import { randomUUID } from 'node:crypto';
import { describeLocation, poolFor, redact } from '../../adapters/postgres/connection';
import type { PgClientLike, PgPoolLike } from '../../adapters/postgres/driver';
import { IncompatibleSchemaError } from '../../adapters/postgres/errors';
import { pages } from '../../adapters/postgres/replay';
import {
  ensureLog,
  ensureSchema,
  projectionsVersionKey,
  projectionsVersionValue,
  type Tables,
  tablesOf,
} from '../../adapters/postgres/schema';
import { PostgresStore } from '../../adapters/postgres/store';
import {
  AppendonlyError,
  CorruptLogError,
  type EventGroup,
  type EventStore,
  type JsonValue,
} from '../../src/index';
import type { ReplayRecord } from '../../src/store/replay-batch';
import type { ConsumerRecord } from '../../src/index';
import { withStoreLocked } from '../stores';
import { CliError, EXIT_INVALID, EXIT_OK, invalid, usage } from '../errors';
import type { LogFileInfo, LogTools, LogWriter } from '../log-format';
import { say } from '../output';

/*
 * The tool on a PostgreSQL log. PATH is the connection string with the log named in its query:
 * `postgres://user@host/db?log=bank&schema=appendonly` (both optional: `default`, `appendonly`,
 * the store's defaults). The two parameters are the tool's and are removed before the string
 * reaches pg. The log is shared and has no single-writer lock, so the tool only reads it
 * (info, cat, check, convert's source: one REPEATABLE READ READ ONLY transaction, the same
 * consistent view a replay has) or writes a new one (convert's target, in one transaction);
 * the commands that rewrite a log in place refuse (see `refuse`). Every message names the log
 * by the redacted location: the password never reaches the output.
 */

/** A schema name goes into SQL quoted: the store's own rule for it (adapters/postgres/options). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Rows per INSERT when writing a new log. */
const SLICE = 2000;

/** `arg` for messages: the connection string without its password. */
export function displayPostgresPath(arg: string): string {
  return redact(arg);
}

/** A PostgreSQL log named on the command line. */
export interface PostgresTarget {
  /** The connection string given to pg: the argument without `log` and `schema`. */
  readonly connectionString: string;
  readonly log: string;
  readonly schema: string;
  /** For messages: no password. */
  readonly where: string;
}

/** Parses `postgres://…?log=…&schema=…`; a usage error (exit 2) for what cannot be used. */
export function parsePostgresPath(arg: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(arg);
  } catch {
    throw usage(`${redact(arg)}: not a valid postgres:// connection string`);
  }
  const log = url.searchParams.get('log') ?? 'default';
  const schema = url.searchParams.get('schema') ?? 'appendonly';
  url.searchParams.delete('log');
  url.searchParams.delete('schema');
  const connectionString = url.toString();
  if (log === '' || log.length > 200) throw usage(`${redact(arg)}: log= must be 1 to 200 characters`);
  if (!IDENTIFIER.test(schema))
    throw usage(`${redact(arg)}: schema= must be a plain identifier (letters, digits, _), got ${schema}`);
  return { connectionString, log, schema, where: describeLocation(connectionString, schema, log) };
}

/** The head row of a log. */
interface Head {
  readonly seq: number;
  readonly snapshotSeq: number;
  readonly snapshotId: number;
}

export class PostgresTools implements LogTools {
  readonly kind = 'postgres';
  readonly location: string;
  private readonly t: Tables;
  /** What the last read found, for `files()` and `details()` (info calls them after reading). */
  private seen: { head: Head; shape: Shape; eventBytes: number; snapshotBytes: number } | null = null;

  constructor(private readonly target: PostgresTarget) {
    this.location = target.where;
    this.t = tablesOf(target.schema);
  }

  files(): LogFileInfo[] {
    const s = this.seen;
    return [
      { name: `${this.t.events} (log ${this.target.log})`, kind: 'events', size: s?.eventBytes ?? 0 },
      { name: `${this.t.snapshot} (log ${this.target.log})`, kind: 'snapshot', size: s?.snapshotBytes ?? 0 },
    ];
  }

  details(): Record<string, string | number> {
    const head = this.seen?.head;
    return head === undefined
      ? {}
      : { head: head.seq, 'snapshot seq': head.snapshotSeq, 'snapshot id': head.snapshotId };
  }

  async *records(_label: string): AsyncGenerator<readonly ReplayRecord[]> {
    const pool = this.pool();
    try {
      const client = await this.connect(pool);
      let ok = false;
      try {
        await this.query(client, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const head = await this.head(client);
        const { rows } = await this.query(
          client,
          `SELECT (SELECT coalesce(sum(length(data)), 0)::float8 FROM ${this.t.events} WHERE log = $1) AS e,
                  (SELECT coalesce(sum(length(key) + length(value)), 0)::float8 FROM ${this.t.snapshot}
                   WHERE log = $1 AND id = $2) AS s`,
          [this.target.log, head.snapshotId],
        );
        const sizes = rows[0] as { e: number; s: number };
        const shape = await this.shape(client, head);
        this.seen = { head, shape, eventBytes: sizes.e, snapshotBytes: sizes.s };
        yield* this.guard(pages(this.read(client)));
        await this.query(client, 'COMMIT');
        ok = true;
      } finally {
        if (!ok) await client.query('ROLLBACK').catch(() => {});
        client.release(!ok);
      }
    } finally {
      await pool.end().catch(() => {});
    }
  }

  /**
   * A structural check of the log, read in one consistent transaction: the head row's numbers are
   * consistent with the events (no event beyond the head; above the snapshot, every seq up to the
   * head, none missing; a snapshot that covers every event deleted below it), then every row
   * decoded as a replay decodes it (whole commands, JSON data). Nothing to repair in place: a
   * damaged log is refused by every instance, and `--fix` says so.
   */
  async check(options: { fix?: boolean }): Promise<number> {
    if (options.fix)
      throw invalid(
        `check --fix does not repair a PostgreSQL log (it is shared by live instances): check it, then repair it with SQL or convert it`,
      );
    const where = this.location;
    let last = 0;
    try {
      for await (const batch of this.records('checking')) {
        for (const r of batch) {
          if (r.kind === 'snapshot') last = r.seq;
          else if (r.kind === 'group') last = r.seq + r.events.length - 1;
        }
      }
    } catch (err) {
      if (!(err instanceof NotValid)) throw err;
      // The head row against the counts says more than the row where decoding stopped.
      const problem = this.seen === null ? null : shapeProblem(this.seen.head, this.seen.shape);
      say(`${where}: not valid: ${problem ?? `${err.reason}; the last good sequence is ${last}`}`);
      return EXIT_INVALID;
    }
    // Read in the same transaction as the events: a live log's head cannot move in between.
    const { head, shape } = this.seen!;
    const problem = shapeProblem(head, shape);
    if (problem !== null) {
      say(`${where}: not valid: ${problem}`);
      return EXIT_INVALID;
    }
    if (last !== head.seq) {
      say(`${where}: not valid: the head row says seq ${head.seq}, the events end at seq ${last}`);
      return EXIT_INVALID;
    }
    say(
      `${where}: valid (head seq ${head.seq}, snapshot up to seq ${head.snapshotSeq}, ${shape.above} events above it)`,
    );
    return EXIT_OK;
  }

  async strip(): Promise<number> {
    return refuse('strip');
  }

  async truncate(): Promise<number> {
    return refuse('truncate');
  }

  async assertLoads(command: string): Promise<void> {
    // `rewrite` is the one caller: compaction of a shared log belongs to a running instance.
    throw invalid(
      `refusing to ${command} a PostgreSQL log from the tool (it has no single-writer lock to hold against live instances): run app.compact() in one of them`,
    );
  }

  /** Read through a store opened as an instance would (a shared log has no lock to take). */
  consumerRecords(): Promise<readonly ConsumerRecord[]> {
    return withStoreLocked(this.store(), 'read the consumers', (store) =>
      (store as PostgresStore).loadConsumers(),
    );
  }

  store(): EventStore {
    const { connectionString, log, schema } = this.target;
    return new PostgresStore({ connectionString, log, schema, autoRewritePercentage: 0 });
  }

  replaySize(): number {
    return 0;
  }

  async backup(): Promise<void> {
    throw invalid('the appendonly tool does not back up a PostgreSQL log: use pg_dump');
  }

  /** The counts the structural check compares with the head row, in one statement. */
  private async shape(client: PgClientLike, head: Head): Promise<Shape> {
    const { rows } = await this.query(
      client,
      `SELECT count(*) FILTER (WHERE seq > $2)::float8 AS above,
              min(seq) FILTER (WHERE seq > $2)::float8 AS first_above,
              min(seq)::float8 AS first, max(seq)::float8 AS last,
              (SELECT min(e.seq)::float8 + 1 FROM ${this.t.events} e
               WHERE e.log = $1 AND e.seq > $2 AND e.seq < $3 AND NOT EXISTS
                 (SELECT 1 FROM ${this.t.events} f WHERE f.log = $1 AND f.seq = e.seq + 1)) AS missing
       FROM ${this.t.events} WHERE log = $1`,
      [this.target.log, head.snapshotSeq, head.seq],
    );
    const r = rows[0] as {
      above: number;
      first_above: number | null;
      first: number | null;
      last: number | null;
      missing: number | null;
    };
    return { above: r.above, firstAbove: r.first_above, first: r.first, last: r.last, missing: r.missing };
  }

  /** The head row; a usage error (exit 2) when the schema or the log is not there. */
  private async head(client: PgClientLike): Promise<Head> {
    const { rows: found } = await this.query(client, 'SELECT to_regclass($1) IS NOT NULL AS there', [
      this.t.heads,
    ]);
    if (!(found[0] as { there: boolean }).there)
      throw usage(`${this.location}: no appendonly store in schema ${this.target.schema}`);
    const { rows } = await this.query(
      client,
      `SELECT seq::float8 AS seq, snapshot_seq::float8 AS "snapshotSeq", snapshot_id::float8 AS "snapshotId"
       FROM ${this.t.heads} WHERE log = $1`,
      [this.target.log],
    );
    const head = rows[0] as Head | undefined;
    if (head === undefined)
      throw usage(`${this.location}: no log named ${JSON.stringify(this.target.log)} in this store`);
    return head;
  }

  private read(client: PgClientLike) {
    return {
      client,
      t: this.t,
      log: this.target.log,
      where: this.location,
      after: undefined,
      counter: { bytes: 0 },
    };
  }

  /** A replay's CorruptLogError is the log's verdict: exit 1, one line, as the other formats. */
  private async *guard(
    source: AsyncGenerator<readonly ReplayRecord[]>,
  ): AsyncGenerator<readonly ReplayRecord[]> {
    try {
      yield* source;
    } catch (err) {
      if (err instanceof CorruptLogError) throw new NotValid(err.message, this.location);
      throw cleaned(err);
    }
  }

  private pool(): PgPoolLike {
    return poolFor(this.target.connectionString);
  }

  private async connect(pool: PgPoolLike): Promise<PgClientLike> {
    try {
      return await pool.connect();
    } catch (err) {
      throw invalid(`cannot connect to ${this.location}: ${messageOf(err)}`);
    }
  }

  private async query(client: PgClientLike, text: string, values?: unknown[]) {
    try {
      return await client.query(text, values);
    } catch (err) {
      throw invalid(`cannot read ${this.location}: ${messageOf(err)}`);
    }
  }
}

/** A replay's verdict on a row: exit 1; `reason` is the CorruptLogError's, without the location. */
class NotValid extends CliError {
  readonly reason: string;
  constructor(message: string, where: string) {
    const reason = message.startsWith(`${where}: `) ? message.slice(where.length + 2) : message;
    super(`${where}: not valid: ${reason}`, EXIT_INVALID);
    this.reason = reason;
  }
}

/** The counts of events the check compares with the head row. */
interface Shape {
  /** Events above the snapshot, and the first of them. */
  readonly above: number;
  readonly firstAbove: number | null;
  /** The first and last event of the log (history kept below the snapshot included). */
  readonly first: number | null;
  readonly last: number | null;
  /** The first seq missing between two events above the snapshot (below the head). */
  readonly missing: number | null;
}

/** What is wrong with the head row against the events, or null. */
function shapeProblem(head: Head, s: Shape): string | null {
  if (head.snapshotSeq > head.seq)
    return `the snapshot covers up to seq ${head.snapshotSeq}, beyond the head (seq ${head.seq})`;
  if (s.last !== null && s.last > head.seq)
    return `events up to seq ${s.last} lie beyond the head (seq ${head.seq}): a writer outside the store`;
  // Events were deleted below the first one kept: only a snapshot may stand for them.
  const deletedUpTo = s.first === null ? head.seq : s.first - 1;
  if (deletedUpTo > head.snapshotSeq)
    return `events up to seq ${deletedUpTo} are gone and no snapshot covers them (snapshot up to seq ${head.snapshotSeq})`;
  const expected = head.seq - head.snapshotSeq;
  if (s.above !== expected)
    return `${expected} events expected above the snapshot (seq ${head.snapshotSeq + 1} to ${head.seq}), ${s.above} found: ${s.missing !== null ? `seq ${s.missing} is missing` : 'some are missing'}`;
  if (expected > 0 && s.firstAbove !== head.snapshotSeq + 1)
    return `the events above the snapshot start at seq ${s.firstAbove}, not ${head.snapshotSeq + 1}`;
  if (head.snapshotId === 0 && head.snapshotSeq > 0)
    return `the head row names a snapshot up to seq ${head.snapshotSeq} without its id`;
  return null;
}

function refuse(command: string): number {
  throw invalid(
    `${command} does not work on a PostgreSQL log (shared by live instances, with no lock the tool could hold): \`appendonly convert\` it to an AOF folder, ${command} there, and convert it to a new log`,
  );
}

/** The driver's message, without any password. */
function messageOf(err: unknown): string {
  return redact(err instanceof Error ? err.message : String(err));
}

/** An error on its way out, its message redacted (a driver's may quote its connection string). */
function cleaned(err: unknown): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof AppendonlyError) return invalid(redact(err.message));
  return invalid(messageOf(err));
}

/**
 * A new PostgreSQL log for `convert`: the tables are created if the schema has none, the log's
 * head row if it is new; a log that already holds anything (a head beyond 0, a snapshot, an
 * event) is refused. Everything is written in one transaction on the locked head row, so a
 * failed or aborted conversion leaves nothing, and no instance can append meanwhile.
 */
export async function createPostgresLog(
  toArg: string,
): Promise<{ readonly kind: string; readonly writer: LogWriter }> {
  const target = parsePostgresPath(toArg);
  const pool = poolFor(target.connectionString);
  let client: PgClientLike | null = null;
  try {
    client = await pool.connect();
    const t = tablesOf(target.schema);
    await ensureSchema(client, t);
    await ensureLog(client, t, target.log);
    await client.query('BEGIN');
    const { rows } = await client.query(
      `SELECT seq::float8 AS seq, snapshot_id::float8 AS id,
              EXISTS (SELECT 1 FROM ${t.events} WHERE log = $1) AS events
       FROM ${t.heads} WHERE log = $1 FOR UPDATE`,
      [target.log],
    );
    const head = rows[0] as { seq: number; id: number; events: boolean };
    if (head.seq > 0 || head.id > 0 || head.events)
      throw usage(
        `${target.where}: this log already holds events (head seq ${head.seq}); refusing to write over it (convert writes a new log: choose another log=)`,
      );
    return { kind: 'postgres', writer: new PgLogWriter(pool, client, t, target) };
  } catch (err) {
    if (client !== null) {
      await client.query('ROLLBACK').catch(() => {});
      client.release();
    }
    await pool.end().catch(() => {});
    if (err instanceof CliError) throw err;
    if (err instanceof IncompatibleSchemaError) throw usage(redact(err.message));
    throw invalid(`cannot write ${target.where}: ${messageOf(err)}`);
  }
}

/** Writes the rows the store writes, in the open transaction; `close` commits it. */
class PgLogWriter implements LogWriter {
  private readonly batch = randomUUID();
  private rows: ReturnType<typeof empty> = empty();
  private last = 0;

  constructor(
    private readonly pool: PgPoolLike,
    private readonly client: PgClientLike,
    private readonly t: Tables,
    private readonly target: PostgresTarget,
  ) {}

  async snapshot(seq: number, entries: Map<string, JsonValue>, projectionsVersion?: string): Promise<void> {
    const { t, target } = this;
    let ord = 0;
    let keys: string[] = [];
    let values: string[] = [];
    const flush = async () => {
      await this.run(
        `INSERT INTO ${t.snapshot} (log, id, ord, key, value)
         SELECT $1, 1, $2 + e.i - 1, e.k, e.v FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS e(k, v, i)`,
        [target.log, ord - keys.length, keys, values],
      );
      keys = [];
      values = [];
    };
    for (const [key, value] of entries) {
      keys.push(key);
      values.push(JSON.stringify(value));
      ord++;
      if (keys.length === SLICE) await flush();
    }
    if (keys.length > 0) await flush();
    await this.run(`UPDATE ${t.heads} SET seq = $2, snapshot_seq = $2, snapshot_id = 1 WHERE log = $1`, [
      target.log,
      seq,
    ]);
    // The version of snapshot 1, as the store's compaction records it; none: a row left by an
    // earlier log of this name must not stand for this snapshot.
    const key = projectionsVersionKey(target.log);
    if (projectionsVersion === undefined) await this.run(`DELETE FROM ${t.meta} WHERE key = $1`, [key]);
    else
      await this.run(
        `INSERT INTO ${t.meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [key, projectionsVersionValue(1, projectionsVersion)],
      );
    this.last = seq;
  }

  async group(g: EventGroup): Promise<void> {
    const r = this.rows;
    for (let i = 0; i < g.events.length; i++) {
      r.seq.push(g.seq + i);
      r.time.push(g.time);
      r.type.push(g.events[i].type);
      r.data.push(JSON.stringify(g.events[i].data));
      // The group's size on its first row, 0 on the others: what the store writes (append.ts).
      r.n.push(i === 0 ? g.events.length : 0);
      r.id.push(g.ids?.[i] ?? null);
      r.version.push(g.versions?.[i] ?? null);
      r.metadata.push(i === 0 && g.metadata !== undefined ? JSON.stringify(g.metadata) : null);
    }
    this.last = g.seq + g.events.length - 1;
    if (r.seq.length >= SLICE) await this.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.run(`UPDATE ${this.t.heads} SET seq = $2, batch = $3 WHERE log = $1`, [
      this.target.log,
      this.last,
      this.batch,
    ]);
    await this.run('COMMIT');
    this.client.release();
    await this.pool.end().catch(() => {});
  }

  async abort(): Promise<void> {
    await this.client.query('ROLLBACK').catch(() => {});
    this.client.release(true);
    await this.pool.end().catch(() => {});
  }

  private async flush(): Promise<void> {
    const r = this.rows;
    if (r.seq.length === 0) return;
    this.rows = empty();
    await this.run(
      `INSERT INTO ${this.t.events} (log, seq, time, type, data, n, batch, id, version, metadata)
       SELECT $1, e.seq, e.time, e.type, e.data, e.n, $7, e.id, e.version, e.metadata
       FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $8::text[], $9::integer[], $10::text[])
         AS e(seq, time, type, data, n, id, version, metadata)`,
      [this.target.log, r.seq, r.time, r.type, r.data, r.n, this.batch, r.id, r.version, r.metadata],
    );
  }

  private async run(text: string, values?: unknown[]): Promise<void> {
    try {
      await this.client.query(text, values);
    } catch (err) {
      throw invalid(`cannot write ${this.target.where}: ${messageOf(err)}`);
    }
  }
}

function empty() {
  return {
    seq: [] as number[],
    time: [] as number[],
    type: [] as string[],
    data: [] as string[],
    n: [] as number[],
    id: [] as (string | null)[],
    version: [] as (number | null)[],
    metadata: [] as (string | null)[],
  };
}
