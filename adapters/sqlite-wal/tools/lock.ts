import { Database, type SqliteDatabase } from '../driver';
import { PersistenceError, StoreLockedError } from '../../../src/index';
import { APPLICATION_ID } from '../database';
import { IncompatibleDatabaseError } from '../errors';

/**
 * A connection of a tool's own to an existing store, holding the lock the store takes: SQLite's
 * exclusive locking mode, taken by the first write and kept until `close()`. While it is open no
 * SqliteWalStore (in this or another process) can open the file, and it cannot be opened while
 * one has it: `timeout: 0` fails at once rather than wait for a writer that never leaves.
 *
 * Unlike the store's own open it changes nothing: no schema, no WAL switch, no cut of a torn
 * tail, so that a tool can look at a damaged store first and decide.
 *
 * Throws PersistenceError when the file cannot be opened at all, IncompatibleDatabaseError when
 * it is a SQLite database of another program, StoreLockedError when a writer holds it.
 */
export function lockDatabase(file: string): SqliteDatabase {
  let db: SqliteDatabase;
  try {
    db = new Database(file, { timeout: 0, fileMustExist: true });
  } catch (err) {
    throw PersistenceError.from(`cannot open ${file}`, err);
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    const appId = Number(db.pragma('application_id', { simple: true }));
    if (appId !== APPLICATION_ID)
      throw new IncompatibleDatabaseError(file, 'a SQLite database, but not an appendonly store');
    // The first write takes the exclusive lock, and exclusive mode keeps it until close.
    db.exec('BEGIN IMMEDIATE; COMMIT;');
    return db;
  } catch (err) {
    db.close();
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED')
      throw new StoreLockedError(`${file} is locked by another writer (an open SqliteWalStore)`);
    throw err;
  }
}
