import * as fs from 'node:fs';
import type { SqliteDatabase } from '../driver';
import { fileStamp } from '../../common/stamp';
import { deleteEventsFrom } from '../torn-tail';

/**
 * Cuts the events from `seq` on (a torn command, for `check --fix`), saving them first to a side
 * file `<file>.cut-<stamp>.jsonl`, one row a line as the table holds it (seq, time, type, data,
 * n, id, version, metadata), so that nothing cut is lost. The caller holds the lock (`db`) and has made a backup.
 * Returns the side file's path.
 */
export function cutEventsToSideFile(db: SqliteDatabase, file: string, seq: number): string {
  const side = `${file}.cut-${fileStamp()}.jsonl`;
  const rows = db
    .prepare('SELECT seq, time, type, data, n, id, version, metadata FROM events WHERE seq >= ? ORDER BY seq')
    .all(seq);
  fs.writeFileSync(side, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`, { mode: 0o600 });
  deleteEventsFrom(db, seq);
  return side;
}
