import type { SqliteDatabase } from '../driver';
import { readMaxSeq, readSnapshotSeq } from '../replay';
import { findTornTail, type TornTail } from '../torn-tail';

/*
 * What `check` verifies before the store's reader decodes a row: SQLite's own integrity check,
 * then the shape the store keeps: above `meta.snapshot_seq` the events are numbered one by one
 * with no gap, and the last command is whole. A replay would refuse a gap too, but only after
 * reading up to it; this names it at once.
 */

/** SQLite's `PRAGMA integrity_check`: null when it says ok, else its findings. */
export function integrityProblems(db: SqliteDatabase): string[] | null {
  const rows = db.pragma('integrity_check') as { integrity_check: string }[];
  if (rows.length === 1 && rows[0].integrity_check === 'ok') return null;
  return rows.map((r) => r.integrity_check);
}

/** The shape of the events table, as far as its numbers tell. */
export interface EventsShape {
  /** The last sequence number the snapshot table covers. */
  readonly snapshotSeq: number;
  /** The last sequence number in the table (the snapshot's when no event follows it). */
  readonly lastSeq: number;
  /** Events above the snapshot; `lastSeq - snapshotSeq` when none is missing. */
  readonly eventsAbove: number;
  /** True when events are missing between the snapshot and `lastSeq`. */
  readonly gap: boolean;
  /** The command the table ends inside, or null. */
  readonly torn: TornTail | null;
}

/** Reads the shape of the events table (a few indexed queries, no scan of the rows' data). */
export function eventsShape(db: SqliteDatabase): EventsShape {
  const snapshotSeq = readSnapshotSeq(db);
  const lastSeq = readMaxSeq(db) ?? snapshotSeq;
  const eventsAbove = Number(
    db.prepare('SELECT count(*) FROM events WHERE seq > ?').pluck().get(snapshotSeq),
  );
  return {
    snapshotSeq,
    lastSeq,
    eventsAbove,
    gap: eventsAbove !== Math.max(0, lastSeq - snapshotSeq),
    torn: findTornTail(db),
  };
}
