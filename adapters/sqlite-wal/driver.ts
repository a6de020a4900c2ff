import { loadDriver } from '../common/drivers';

/*
 * What the store and its tools call on better-sqlite3, described here rather than imported from
 * @types/better-sqlite3: the published declarations then name no driver's types, so a consumer
 * compiles with `skipLibCheck: false` whether or not it has the driver or its types. A
 * better-sqlite3 `Database` is assignable to SqliteDatabase (test/sqlite-wal/driver.test.ts
 * checks it), so it can be passed wherever one is taken.
 */

/** The result of a statement that writes. */
export interface SqliteRunResult {
  /** Rows inserted, updated or deleted. */
  readonly changes: number;
}

/** A prepared statement (better-sqlite3's `Statement`, as far as appendonly uses it). */
export interface SqliteStatement {
  /** Runs it; the parameters bind its `?`s in order. */
  run(...params: unknown[]): SqliteRunResult;
  /** The first row (an object, or its first column after `pluck()`), or undefined. */
  get(...params: unknown[]): unknown;
  /** Every row. */
  all(...params: unknown[]): unknown[];
  /** Rows become their first column's value. */
  pluck(toggle?: boolean): this;
  /** Rows become arrays of column values. */
  raw(toggle?: boolean): this;
}

/** An open connection (better-sqlite3's `Database`, as far as appendonly uses it). */
export interface SqliteDatabase {
  /** False once closed. */
  readonly open: boolean;
  /** True inside a transaction. */
  readonly inTransaction: boolean;
  /** Compiles one SQL statement. */
  prepare(source: string): SqliteStatement;
  /** Runs SQL (several statements allowed), returning nothing. */
  exec(source: string): this;
  /** Runs a PRAGMA; `simple` returns the first column of the first row. */
  pragma(source: string, options?: { simple?: boolean }): unknown;
  /** Wraps `fn` in BEGIN/COMMIT (ROLLBACK when it throws). */
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
  /** SQLite's online backup into the file `destination`. */
  backup(destination: string): Promise<unknown>;
  /** Closes the connection (and releases its locks). */
  close(): this;
}

/** Options of the driver's constructor that appendonly passes. */
export interface SqliteOpenOptions {
  /** Milliseconds to wait for a lock; 0 fails at once. */
  readonly timeout?: number;
  /** Refuse to create the file. */
  readonly fileMustExist?: boolean;
}

/** The driver's constructor (better-sqlite3's default export). */
export type SqliteDriver = new (file: string, options?: SqliteOpenOptions) => SqliteDatabase;

/**
 * better-sqlite3, loaded when this adapter is first imported. The probe opens an in-memory
 * database: better-sqlite3 loads its native binding only there, so it is what tells a driver
 * whose build npm skipped from a working one.
 */
export const Database: SqliteDriver = loadDriver<SqliteDriver>(
  'better-sqlite3',
  (id) => require(id),
  (Driver) => new Driver(':memory:').close(),
);
