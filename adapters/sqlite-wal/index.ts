/**
 * The SQLite-WAL store: `new SqliteWalStore({ file, appendfsync })`, the same contract as the
 * AOF store on one SQLite database in WAL mode (better-sqlite3).
 *
 * better-sqlite3 is an optional peer dependency: importing this entry point without it (or with
 * its native build skipped) throws `MissingDriverError`, one line naming what to run.
 *
 * @packageDocumentation
 */
export { APPLICATION_ID, SCHEMA_VERSION } from './database';
export type {
  SqliteDatabase,
  SqliteDriver,
  SqliteOpenOptions,
  SqliteRunResult,
  SqliteStatement,
} from './driver';
export { IncompatibleDatabaseError } from './errors';
export type { SqliteWalStoreOptions } from './options';
export { type SqliteWalStats, SqliteWalStore } from './store';
