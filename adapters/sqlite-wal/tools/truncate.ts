import type { SqliteDatabase } from '../driver';
import type { LogPoint } from '../../common/log-point';
import { readMaxSeq, readSnapshotSeq } from '../replay';
import { deleteEventsFrom } from '../torn-tail';

/*
 * Point-in-time recovery on a store: delete every event from the first command after the point.
 * Whole commands only: a command's rows follow its head row (n > 0) with n = 0, so a cut at a
 * row with n = 0 would keep half a command and is refused. The events the snapshot covers
 * survive only as state, so a point before it cannot be reached.
 */

/** What truncating at a point would do. */
export type TruncatePlan =
  /** The point `seq` is before the snapshot. */
  | { readonly kind: 'before-snapshot'; readonly seq: number; readonly snapshotSeq: number }
  /** The point `seq` is inside the command of events `first` to `last`. */
  | { readonly kind: 'inside-command'; readonly seq: number; readonly first: number; readonly last: number }
  /** A cut by time, but no event has a time. */
  | { readonly kind: 'no-times' }
  /** Nothing after the point: the store ends at `lastSeq`. */
  | { readonly kind: 'nothing'; readonly lastSeq: number }
  /** Delete the events `from` to `lastSeq`. */
  | { readonly kind: 'cut'; readonly from: number; readonly lastSeq: number };

/** Plans a truncate of the store at `point` (reads only). */
export function planTruncate(db: SqliteDatabase, point: LogPoint): TruncatePlan {
  const snapshotSeq = readSnapshotSeq(db);
  const lastSeq = readMaxSeq(db) ?? snapshotSeq;
  let from: number | null;
  if ('seq' in point) {
    if (point.seq < snapshotSeq) return { kind: 'before-snapshot', seq: point.seq, snapshotSeq };
    const row = db.prepare('SELECT seq, n FROM events WHERE seq = ?').get(point.seq + 1) as
      | { seq: number; n: number }
      | undefined;
    if (row !== undefined && row.n === 0) {
      const head = db
        .prepare('SELECT seq, n FROM events WHERE seq <= ? AND n > 0 ORDER BY seq DESC LIMIT 1')
        .get(point.seq) as { seq: number; n: number };
      return { kind: 'inside-command', seq: point.seq, first: head.seq, last: head.seq + head.n - 1 };
    }
    from = row === undefined ? null : point.seq + 1;
  } else {
    const timed = Number(db.prepare('SELECT count(*) FROM events WHERE time > 0').pluck().get());
    if (timed === 0 && lastSeq > snapshotSeq) return { kind: 'no-times' };
    from =
      (db
        .prepare('SELECT min(seq) FROM events WHERE n > 0 AND time > ? AND seq > ?')
        .pluck()
        .get(point.ts * 1000, snapshotSeq) as number | null) ?? null;
  }
  if (from === null || from > lastSeq) return { kind: 'nothing', lastSeq };
  return { kind: 'cut', from, lastSeq };
}

/** Carries out a `cut` plan; the caller holds the lock and has made a backup. */
export function truncateEvents(db: SqliteDatabase, plan: { readonly from: number }): void {
  deleteEventsFrom(db, plan.from);
}
