import type { SqliteDatabase } from './driver';
import type { Logger } from '../../src/index';
import { readMaxSeq } from './replay';

/*
 * Groups are committed whole, so only a tool (or a hand edit) can leave the events table ending
 * inside a command: its head row says `n` events and fewer follow it. This file is the one place
 * that tells (findTornTail) and the one way the tail of the table is cut (deleteEventsFrom): the
 * store's open cuts a torn command as Redis's `aof-load-truncated yes` does; the tools report it
 * (check, a read-only replay) or cut it under their own lock (check --fix, truncate).
 */

/** A command cut short at the end of the events table. */
export interface TornTail {
  /** The sequence number of its first event (its head row). */
  readonly seq: number;
  /** The events the command has, by its head row. */
  readonly size: number;
  /** The events of it that are in the table (fewer than `size`). */
  readonly present: number;
}

/** The command the table ends inside, or null when its last command is whole. */
export function findTornTail(db: SqliteDatabase): TornTail | null {
  const head = db.prepare('SELECT seq, n FROM events WHERE n > 0 ORDER BY seq DESC LIMIT 1').get() as
    | { seq: number; n: number }
    | undefined;
  if (head === undefined) return null;
  const maxSeq = readMaxSeq(db) ?? head.seq;
  if (head.seq + head.n - 1 <= maxSeq) return null;
  return { seq: head.seq, size: head.n, present: maxSeq - head.seq + 1 };
}

/** Deletes every event from `seq` on (whole commands, when `seq` starts one); returns the rows deleted. */
export function deleteEventsFrom(db: SqliteDatabase, seq: number): number {
  return db.prepare('DELETE FROM events WHERE seq >= ?').run(seq).changes;
}

/**
 * Cuts a torn command off, with a warning that names it; otherwise the next append would collide
 * with its rows. Called by the store's open, under its lock.
 */
export function cutTornTail(db: SqliteDatabase, file: string, logger: Logger): void {
  const torn = findTornTail(db);
  if (torn === null) return;
  const cut = deleteEventsFrom(db, torn.seq);
  logger.warn(
    `${file}: the log ended inside the command at seq ${torn.seq} (${cut} of its ${torn.size} events); ` +
      'those events were removed so that the command is replayed all or none',
  );
}
