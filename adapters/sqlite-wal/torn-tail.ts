import type Database from 'better-sqlite3';
import type { Logger } from '../../src/index';

/**
 * Groups are committed whole, so only a tool (or a hand edit) can leave the table ending inside
 * a command. Like Redis's `aof-load-truncated yes`, the torn command is cut off with a warning
 * that names it; otherwise the next append would collide with its rows.
 */
export function cutTornTail(db: Database.Database, file: string, logger: Logger): void {
  const head = db.prepare('SELECT seq, n FROM events WHERE n > 0 ORDER BY seq DESC LIMIT 1').get() as
    | { seq: number; n: number }
    | undefined;
  if (head === undefined) return;
  const maxSeq = Number(db.prepare('SELECT max(seq) FROM events').pluck().get());
  if (head.seq + head.n - 1 <= maxSeq) return;
  const cut = db.prepare('DELETE FROM events WHERE seq >= ?').run(head.seq).changes;
  logger.warn(
    `${file}: the log ended inside the command at seq ${head.seq} (${cut} of its ${head.n} events); ` +
      'those events were removed so that the command is replayed all or none',
  );
}
