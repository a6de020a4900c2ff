/*
 * What the store calls on node-postgres, typed structurally: a `pg.Pool` the user owns fits
 * these interfaces as it is, and the published types need no `@types/pg`. Nothing here imports
 * `pg` itself; `connection.ts` loads it only when the store is given a connection string.
 */
import { createHash } from 'node:crypto';

/** The part of a query result the store reads. */
export interface PgResult {
  /** Rows: objects, or arrays with `rowMode: 'array'`. */
  readonly rows: unknown[];
  /** Rows inserted, updated or returned; null for a statement that reports none. */
  readonly rowCount: number | null;
}

/** A query whose rows come back as arrays of column values (cheaper than objects on replay). */
export interface PgArrayQuery {
  /** Prepared under this name (see {@link PgNamedQuery}) when set. */
  readonly name?: string;
  readonly text: string;
  readonly values?: unknown[];
  readonly rowMode: 'array';
  /** The query's own type parsers (pg's per-query `types`), in place of the process-wide ones. */
  readonly types?: PgTypeParsers;
}

/** pg's type-parser registry, as a query's `types` takes it. */
export interface PgTypeParsers {
  getTypeParser(oid: number, format?: string): (text: string) => unknown;
}

const asSent = (text: string): string => text;

/**
 * Every column as the text the server sent (NULL stays null). The store's reads convert what
 * they read themselves, so they neither depend on type parsers the application set process-wide
 * (with `pg.types.setTypeParser(23, BigInt)`, a group size read as `1n` made a sound log read as
 * corrupt) nor pay for pg's default ones (int8's is a regular expression per value: 3 % of a
 * replay, measured).
 */
export const TEXT_COLUMNS: PgTypeParsers = { getTypeParser: () => asSent };

/**
 * A prepared statement: pg parses and plans `text` once per connection under `name`, then only
 * binds and runs it (the append's planning cost more than its insert, measured: bench/postgres.ts).
 */
export interface PgNamedQuery {
  readonly name: string;
  readonly text: string;
  readonly values: unknown[];
}

/** A statement the store prepares, named by {@link preparedStatement}. */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

/**
 * `text` as a statement to prepare, named `appendonly_<kind>_` and a hash of the text: pg
 * refuses a name prepared on a connection with another text, and two stores on different
 * schemas (different texts) may share a pool.
 */
export function preparedStatement(kind: string, text: string): PreparedStatement {
  return { name: `appendonly_${kind}_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text };
}

/** A `NOTIFY` received on a connection that `LISTEN`s. */
export interface PgNotification {
  readonly channel: string;
  readonly payload?: string;
}

/** One connection checked out of the pool (a `pg.PoolClient`). */
export interface PgClientLike {
  /** A parameterised statement (`$1`, `$2`…), rows as objects. */
  query(text: string, values?: unknown[]): Promise<PgResult>;
  /** A statement whose rows come back as arrays. */
  query(config: PgArrayQuery): Promise<PgResult>;
  /** A prepared statement (parsed and planned once per connection). */
  query(config: PgNamedQuery): Promise<PgResult>;
  /** Back to the pool; `true` destroys the connection instead (after an error). */
  release(destroy?: boolean): void;
  /** The connection broke (the store then takes another). */
  on(event: 'error', listener: (err: Error) => void): unknown;
  /** A NOTIFY on a channel this connection LISTENs to. */
  on(event: 'notification', listener: (message: PgNotification) => void): unknown;
  /** Stops listening for errors (a pooled connection outlives the reader that listened). */
  removeListener(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * What the store needs of a `pg.Pool`. It holds two connections for its lifetime (the writer:
 * appends; the watcher: LISTEN, the head polls, NOTIFY), a third once it runs durable consumers
 * (the session of their advisory locks, one for all of them), and checks one out per replay,
 * per compaction and, briefly, per consumer read and save, so a pool of your own needs `max`
 * ≥ 5 plus what the rest of your application uses. Give it an 'error' listener, and one on each
 * connection from its start (`pool.on('connect', (c) => c.on('error', …))`), as `poolFor` does.
 */
export interface PgPoolLike {
  /** Checks a connection out. */
  connect(): Promise<PgClientLike>;
  /** Closes every connection (called only on a pool the store made itself). */
  end(): Promise<void>;
}

/**
 * node-postgres's `Query` constructor (`pg.Query`): `new Query(text, values, callback)` is a
 * "submittable" that `client.query` runs as it is. Typed structurally, as the rest of this file.
 */
export type PgQueryClass = new (
  text: string,
  values: unknown[],
  callback: (err: Error | null | undefined, result: PgResult) => void,
) => { name?: string };

/** The connections of the store's own pools, with the `Query` of the `pg` that made them. */
const submittable = new WeakMap<PgClientLike, PgQueryClass>();

/** `client` comes from a pool of `pg` whose `Query` is `Query` (`poolFor` registers its own). */
export function registerQueryClass(client: PgClientLike, Query: PgQueryClass): void {
  submittable.set(client, Query);
}

/**
 * Runs a prepared statement: `client.query(query)`, or, on a connection of the store's own pool,
 * the same through a `pg.Query` made from the text. pg copies every config object it is given
 * (`cloneQueryConfig`: `Object.defineProperties` of its own descriptors), which measured 4–5 µs
 * a query on the 2-core benchmark machine, and leaves an object in dictionary mode that the
 * rest of the query reads slowly: the bare store's one-row append spent 10–13 µs less Node CPU
 * per append with it skipped (A/B in one process, 3 runs). A text is not copied; the name is
 * set on the query before it is sent, which is all that pg reads of it (at submit). A pool the
 * user gave may be any `pg`, or a wrapper of one: it gets the plain call.
 */
export function queryNamed(client: PgClientLike, query: PgNamedQuery): Promise<PgResult> {
  const Query = submittable.get(client);
  if (Query === undefined) return client.query(query);
  return new Promise<PgResult>((resolve, reject) => {
    const q = new Query(query.text, query.values, (err, result) => (err ? reject(err) : resolve(result)));
    q.name = query.name;
    (client as unknown as { query(q: object): unknown }).query(q);
  });
}
