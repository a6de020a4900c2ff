import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { APPLICATION_ID } from '../adapters/sqlite-wal/index';
import { CorruptLogError, replaySink, StoreLockedError } from '../src/index';
import { stamp } from './backup';
import { EXIT_INVALID, EXIT_OK, invalid, usage } from './errors';
import { confirmChange, note, say } from './output';
import { storeFor, toolContext } from './stores';
import type { SqliteTarget } from './target';

/*
 * What the tool does to a SQLite-WAL store that the store's API does not: look without
 * repairing (the store cuts a torn command as it opens), and cut or back up under the lock.
 * It works on the store's documented schema (events(seq, time, type, data, n), snapshot,
 * meta.snapshot_seq) through a connection of its own in SQLite's exclusive locking mode, the
 * same lock the store takes, so a running app and the tool never both hold the file.
 */

/** A connection holding the store's exclusive lock; throws (exit 1) naming the lock when a live process holds it. */
export function lockSqlite(file: string, what: string): Database.Database {
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: 0, fileMustExist: true });
  } catch (err) {
    throw usage(`${file}: cannot open: ${(err as Error).message}`);
  }
  try {
    db.pragma('locking_mode = EXCLUSIVE');
    const appId = Number(db.pragma('application_id', { simple: true }));
    if (appId !== APPLICATION_ID) throw usage(`${file}: a SQLite database, but not an appendonly store`);
    // The first write takes the exclusive lock, and exclusive mode keeps it until close.
    db.exec('BEGIN IMMEDIATE; COMMIT;');
    return db;
  } catch (err) {
    db.close();
    const code = (err as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
      throw invalid(
        `refusing to ${what}: ${file} is locked by another writer (an open SqliteWalStore); stop that process first`,
      );
    }
    throw err;
  }
}

/** Copies the database (SQLite's online backup, consistent) next to it; prints and returns the path. */
export function backupSqlite(db: Database.Database, file: string, command: string): Promise<string> {
  return backupSqliteFile(db, file, command);
}

/** The same, on any open connection to the store (the store's own, when the tool opened it). */
export async function backupSqliteFile(
  db: Database.Database,
  file: string,
  command: string,
): Promise<string> {
  const to = `${file}.backup-${stamp()}-${command}`;
  await db.backup(to);
  note(`backup: ${to} (to undo, stop the app and copy it over ${file})`);
  return to;
}

interface Tail {
  readonly snapshotSeq: number;
  readonly maxSeq: number;
  /** The first event of a command cut short at the end of the table, or null. */
  readonly tornAt: number | null;
  readonly gap: string | null;
}

function inspect(db: Database.Database): Tail {
  const snapshotSeq = Number(
    db.prepare("SELECT value FROM meta WHERE key = 'snapshot_seq'").pluck().get() ?? 0,
  );
  const maxSeq = Number(db.prepare('SELECT max(seq) FROM events').pluck().get() ?? snapshotSeq);
  const head = db.prepare('SELECT seq, n FROM events WHERE n > 0 ORDER BY seq DESC LIMIT 1').get() as
    | { seq: number; n: number }
    | undefined;
  const tornAt = head !== undefined && head.seq + head.n - 1 > maxSeq ? head.seq : null;
  const above = Number(db.prepare('SELECT count(*) FROM events WHERE seq > ?').pluck().get(snapshotSeq));
  const gap =
    above !== Math.max(0, maxSeq - snapshotSeq)
      ? `the events table has ${above} events above the snapshot (seq ${snapshotSeq}) up to seq ${maxSeq}: some are missing`
      : null;
  return { snapshotSeq, maxSeq, tornAt, gap };
}

/** `check` on a .db file: SQLite's integrity check, the command structure, then a replay through the store. */
export async function checkSqlite(
  target: SqliteTarget,
  options: { fix?: boolean; yes?: boolean },
): Promise<number> {
  const file = target.file;
  const db = lockSqlite(file, 'check the store');
  let tail: Tail;
  try {
    const integrity = db.pragma('integrity_check') as { integrity_check: string }[];
    if (integrity.length !== 1 || integrity[0].integrity_check !== 'ok') {
      say(`${file}: SQLite integrity check failed: ${integrity.map((r) => r.integrity_check).join('; ')}`);
      return EXIT_INVALID;
    }
    tail = inspect(db);
    if (tail.gap !== null) {
      say(`${file}: not valid: ${tail.gap}`);
      return EXIT_INVALID;
    }
    if (tail.tornAt !== null) {
      const good = tail.tornAt - 1;
      const torn = tail.maxSeq - tail.tornAt + 1;
      say(
        `${file}: not valid: the events table ends inside the command at seq ${tail.tornAt} (${torn} of its events); the last good sequence is ${good}`,
      );
      if (!options.fix) {
        say(`run \`appendonly check ${file} --fix\` to remove the torn command (a backup is kept)`);
        return EXIT_INVALID;
      }
      const question = `This will remove the ${torn} events from seq ${tail.tornAt} (saved to a side file). Continue?`;
      if (!(await confirmChange(options.yes, 'check --fix', 'cut', question))) return EXIT_INVALID;
      await backupSqlite(db, file, 'check-fix');
      const side = `${file}.cut-${stamp()}.jsonl`;
      const rows = db
        .prepare('SELECT seq, time, type, data, n FROM events WHERE seq >= ? ORDER BY seq')
        .all(tail.tornAt);
      fs.writeFileSync(side, rows.map((r) => JSON.stringify(r)).join('\n') + '\n', { mode: 0o600 });
      note(`cut events saved to: ${side}`);
      db.prepare('DELETE FROM events WHERE seq >= ?').run(tail.tornAt);
      say(`removed the torn command: ${file} now ends at seq ${good}`);
    }
  } finally {
    db.close();
  }
  // The structure is sound: now the store's own reader decodes every row.
  const store = storeFor(target);
  try {
    await store.open(toolContext());
  } catch (err) {
    if (err instanceof StoreLockedError) throw invalid(`cannot check ${file}: ${err.message}`);
    throw err;
  }
  let last = 0;
  try {
    const sink = replaySink({
      snapshot: (seq) => {
        last = seq;
      },
      group: (g) => {
        last = g.seq + g.events.length - 1;
      },
    });
    await store.replay(sink);
  } catch (err) {
    if (err instanceof CorruptLogError) {
      say(`${file}: not valid: ${err.message}; the last good sequence is ${last}`);
      return EXIT_INVALID;
    }
    throw err;
  } finally {
    await store.close();
  }
  say(`${file}: valid (snapshot up to seq ${tail.snapshotSeq}, last sequence ${last})`);
  return EXIT_OK;
}
