import * as fs from 'node:fs';
import * as path from 'node:path';
import { Database, type SqliteDatabase } from './driver';
import { type FsyncPolicy, PersistenceError, StoreLockedError } from '../../src/index';
import { IncompatibleDatabaseError } from './errors';

/** `PRAGMA application_id` of an appendonly database ("aonl"): tells our file from any other SQLite file. */
export const APPLICATION_ID = 0x616f6e6c;
/**
 * `PRAGMA user_version`: the schema this code writes and reads. Bumped on any incompatible change.
 * 2: the envelope columns `id`, `version`, `metadata` of `events` (and `events_history`); a
 * version-1 database is migrated when the store opens it (see `migrate`).
 */
export const SCHEMA_VERSION = 2;

/** SQLite's default `wal_autocheckpoint`, restored after a compaction turned it off. */
export const AUTOCHECKPOINT_PAGES = 1000;

/** `synchronous` for each policy: only `always` fsyncs the WAL at every commit. */
export const SYNCHRONOUS: Readonly<Record<FsyncPolicy, string>> = {
  always: 'FULL',
  everysec: 'NORMAL',
  no: 'OFF',
};

/**
 * The schema. Each event is one row, so that the CLI and plain `sqlite3` can read the log; `n`
 * is the size of the command's group on its first row and 0 on the others, so that a replay
 * (or a tool that cut the table) can tell a whole group from a torn one. `meta.snapshot_seq` is
 * the last sequence number the `snapshot` table covers: replay reads events above it only, so
 * a compaction that died before deleting the covered events still loads the same state.
 *
 * The envelope (schema 2): `id` is the event's id (NULL for an event logged before ids),
 * `version` the version its data was logged at (NULL: 1, so a log of unversioned events stores
 * nothing), `metadata` its command's metadata as JSON on the group's first row (NULL: none).
 * `time` is the command's time in ms on every row. The columns come last, in this order, in a new
 * database and in a migrated one alike, so `events_history` copies rows with `SELECT *`.
 */
/** The columns of `events` and `events_history`, in their order. */
export const EVENT_COLUMNS =
  'seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, n INTEGER NOT NULL, id TEXT, version INTEGER, metadata TEXT';

const CREATE = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT, WITHOUT ROWID;
  CREATE TABLE events (${EVENT_COLUMNS});
  CREATE TABLE snapshot (key TEXT NOT NULL, value TEXT NOT NULL);
  INSERT INTO meta (key, value) VALUES ('format', 'appendonly-sqlite-wal'), ('snapshot_seq', 0);
  PRAGMA application_id = ${APPLICATION_ID};
  PRAGMA user_version = ${SCHEMA_VERSION};
`;

const REQUIRED_TABLES = ['events', 'meta', 'snapshot'];

/** An open database: the connection holds the exclusive lock until it is closed. */
export interface OpenedDatabase {
  readonly db: SqliteDatabase;
  /** True when the file was made by this open. */
  readonly created: boolean;
}

/**
 * Opens `file`, takes the writer's lock and checks (or creates) the schema.
 *
 * The lock is SQLite's own: with `locking_mode=EXCLUSIVE`, opening the WAL takes an exclusive
 * POSIX lock on the database file and keeps it until the connection closes. The kernel drops it
 * when the holder dies, so a restart right after a SIGKILL gets it at once, and no PID is ever
 * trusted. The lock is set before the first access, which also keeps the WAL index in heap
 * memory: no `-shm` file, and no other connection (in this process or another) can read or
 * write the file while we hold it. `timeout: 0` makes a second writer fail at once rather than
 * wait out a busy timeout.
 *
 * Node must never `open()` + `close()` the database file itself while the connection lives:
 * closing any descriptor of a file drops the process's POSIX locks on it. Only `stat` is used.
 */
export function openDatabase(file: string, policy: FsyncPolicy): OpenedDatabase {
  let created = false;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.closeSync(fs.openSync(file, 'wx', 0o600));
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
      throw PersistenceError.from(`cannot create ${file}`, err);
  }
  let db: SqliteDatabase;
  try {
    db = new Database(file, { timeout: 0 });
  } catch (err) {
    throw PersistenceError.from(`cannot open ${file}`, err);
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    const empty = isEmptyFile(db);
    // Checked before journal_mode=WAL, which rewrites the header of whatever file it is given.
    if (!empty) checkSchema(file, db);
    // auto_vacuum can only be chosen before the first page is written (journal_mode=WAL writes
    // page 1): incremental, so that compaction can give freed pages back to the file system.
    if (empty) db.pragma('auto_vacuum = INCREMENTAL');
    assertWal(file, String(db.pragma('journal_mode = WAL', { simple: true })));
    db.pragma(`synchronous = ${SYNCHRONOUS[policy]}`);
    if (empty) db.exec(`BEGIN IMMEDIATE; ${CREATE} COMMIT;`);
    else migrate(db);
    return { db, created: created || empty };
  } catch (err) {
    db.close();
    throw openError(file, err);
  }
}

/**
 * Brings a version-1 database to the current schema: the envelope columns added to `events` (and
 * `events_history`), NULL on every existing row (no id, version 1, no metadata: what those
 * events had), in one transaction with the version bump. ADD COLUMN rewrites no row, so this is
 * instant on any size of log. The store holds the exclusive lock, so no reader sees it half
 * done; code of schema 1 then refuses the file ("written by a newer appendonly").
 */
function migrate(db: SqliteDatabase): void {
  const version = Number(db.pragma('user_version', { simple: true }));
  if (version >= SCHEMA_VERSION) return;
  const tables = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name IN ('events', 'events_history')")
    .pluck()
    .all() as string[];
  const add = tables
    .map(
      (t) =>
        `ALTER TABLE ${t} ADD COLUMN id TEXT; ALTER TABLE ${t} ADD COLUMN version INTEGER; ALTER TABLE ${t} ADD COLUMN metadata TEXT;`,
    )
    .join(' ');
  db.exec(`BEGIN IMMEDIATE; ${add} PRAGMA user_version = ${SCHEMA_VERSION}; COMMIT;`);
}

/** Throws unless SQLite answered `wal` to `journal_mode = WAL`. */
export function assertWal(file: string, answer: string): void {
  if (answer.toLowerCase() !== 'wal') {
    throw new IncompatibleDatabaseError(
      file,
      `cannot be put in WAL mode (SQLite kept journal_mode=${answer}); the sqlite-wal store needs WAL: ` +
        'check that the file is writable and on a local file system',
    );
  }
}

function isEmptyFile(db: SqliteDatabase): boolean {
  return Number(db.pragma('page_count', { simple: true })) === 0;
}

/** A foreign or newer schema is refused, never rewritten: the file may hold someone's data. */
function checkSchema(file: string, db: SqliteDatabase): void {
  const appId = Number(db.pragma('application_id', { simple: true }));
  const version = Number(db.pragma('user_version', { simple: true }));
  const tables = db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
    .pluck()
    .all() as string[];
  if (appId !== APPLICATION_ID) {
    throw new IncompatibleDatabaseError(
      file,
      `is not an appendonly store (application_id 0x${(appId >>> 0).toString(16)}, tables: ${tables.join(', ') || 'none'}); ` +
        'refusing to touch it',
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new IncompatibleDatabaseError(
      file,
      `was written by a newer appendonly (schema version ${version}; this version reads up to ${SCHEMA_VERSION}): upgrade appendonly`,
    );
  }
  if (version < 1) throw new IncompatibleDatabaseError(file, `has an unknown schema version ${version}`);
  const missing = REQUIRED_TABLES.filter((t) => !tables.includes(t));
  if (missing.length > 0) {
    throw new IncompatibleDatabaseError(
      file,
      `is an appendonly store without its ${missing.join(', ')} table(s)`,
    );
  }
}

function openError(file: string, err: unknown): Error {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new StoreLockedError(
      `${file} is locked by another writer (an open SqliteWalStore in this or another process)`,
    );
  }
  if (code === 'SQLITE_NOTADB') return new IncompatibleDatabaseError(file, 'is not an SQLite database');
  if (err instanceof Error && !(typeof code === 'string' && code.startsWith('SQLITE_'))) return err;
  return PersistenceError.from(`cannot open ${file}`, err);
}
