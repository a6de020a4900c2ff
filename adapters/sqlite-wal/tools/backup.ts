import type { SqliteDatabase } from '../driver';
import { fileStamp } from '../../common/stamp';

/**
 * Copies the store beside it, as `<file>.backup-<stamp>-<command>`, with SQLite's online backup:
 * a consistent copy of the database and its WAL, taken through `db`, the connection that holds
 * the lock (a tool's own, or the store's), so that nothing writes while it runs. Returns its path.
 */
export async function backupDatabase(db: SqliteDatabase, file: string, command: string): Promise<string> {
  const to = `${file}.backup-${fileStamp()}-${command}`;
  await db.backup(to);
  return to;
}
