/**
 * The SQLite-WAL store: `new SqliteWalStore({ file, appendfsync })`, the same contract as the
 * AOF store on one SQLite database in WAL mode (better-sqlite3).
 *
 * @packageDocumentation
 */
export { APPLICATION_ID, SCHEMA_VERSION } from './database';
export { IncompatibleDatabaseError } from './errors';
export type { SqliteWalStoreOptions } from './options';
export { type SqliteWalStats, SqliteWalStore } from './store';
