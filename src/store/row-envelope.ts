import type { DomainEvent, EventMetadata } from '../events/event';
import { CorruptLogError } from '../errors';
import { type ReplayGroup, withEnvelope } from './replay-batch';

/*
 * The envelope of a group stored one row per event (SQLite, PostgreSQL): columns `id`,
 * `version` (NULL: 1) on every row and `metadata` on the group's first row. Internal to the
 * stores, as replay-batch.ts is. Invariant: a group's rows all have an id or none has (a row
 * without one in a group with ids is damage); a group of NULL columns reads back with no
 * envelope keys, as it was appended.
 */

/** A group whose rows are being read: its events so far, with each row's envelope columns. */
export interface RowGroup {
  readonly seq: number;
  readonly time: number;
  readonly events: DomainEvent[];
  /** Rows the group has (`n` of its first row). */
  readonly size: number;
  readonly ids: (string | null)[];
  readonly versions: (number | null)[];
  readonly metadata: EventMetadata | undefined;
}

/** The record of a group read whole; `where` names the log in errors. */
export function groupOfRows(rows: RowGroup, where: string): ReplayGroup {
  const group: ReplayGroup = { kind: 'group', seq: rows.seq, time: rows.time, events: rows.events };
  const hasIds = rows.ids.some((id) => id !== null);
  if (hasIds && rows.ids.some((id) => id === null))
    throw new CorruptLogError(
      where,
      0,
      `an id on every event of the command at seq ${rows.seq}`,
      'some rows have none',
    );
  const ids = hasIds ? (rows.ids as string[]) : undefined;
  const versions = rows.versions.some((v) => v !== null) ? rows.versions.map((v) => v ?? 1) : undefined;
  return withEnvelope(group, ids, versions, rows.metadata);
}

/**
 * The record of a group of one row, as {@link groupOfRows} makes it of a {@link RowGroup} of
 * that row (one row cannot be partly without an id), without the RowGroup and its column
 * arrays: most commands log one event, and a replay makes one of these per row.
 */
export function groupOfRow(
  seq: number,
  time: number,
  event: DomainEvent,
  id: string | null,
  version: number | null,
  metadata: EventMetadata | undefined,
): ReplayGroup {
  const group: ReplayGroup = { kind: 'group', seq, time, events: [event] };
  return withEnvelope(
    group,
    id === null ? undefined : [id],
    version === null ? undefined : [version],
    metadata,
  );
}

/** A group's `metadata` column (NULL: none): a JSON object, or the log is damaged. */
export function metadataColumn(text: string | null, where: string, seq: number): EventMetadata | undefined {
  if (text === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CorruptLogError(where, 0, `JSON metadata of the command at seq ${seq}`, (err as Error).message);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new CorruptLogError(where, 0, `the metadata of the command at seq ${seq} as a JSON object`);
  return value as EventMetadata;
}

/**
 * Rows in seq order → the groups they make (one row per event; `n`, the group's size, on its
 * first row, 0 on the others): the one grouping of the SQL stores' replays and reads. The seq
 * checks (gaps, compaction) stay with the callers, which know what a gap means there.
 * Invariant: `pending` is the group the rows so far leave incomplete, or null.
 */
export class RowGrouper {
  private open: RowGroup | null = null;

  /** `where` names the log in errors. */
  constructor(private readonly where: string) {}

  /** The group the rows so far end inside (its events so far), or null. */
  get pending(): RowGroup | null {
    return this.open;
  }

  /**
   * Adds a row; returns the group it completes, or null. A continuation row where a command
   * should start, or a new command inside one, is damage (`CorruptLogError`). `metadata` is the
   * column's text, read on a group's first row only.
   */
  add(
    seq: number,
    time: number,
    event: DomainEvent,
    n: number,
    id: string | null,
    version: number | null,
    metadata: string | null,
  ): ReplayGroup | null {
    const open = this.open;
    if (open === null) {
      if (n < 1)
        throw new CorruptLogError(
          this.where,
          0,
          `the first event of a command at seq ${seq}`,
          'found a continuation row',
        );
      const meta = metadataColumn(metadata, this.where, seq);
      // Most commands log one event: no RowGroup and no column arrays for them.
      if (n === 1) return groupOfRow(seq, time, event, id, version, meta);
      this.open = { seq, time, events: [event], size: n, ids: [id], versions: [version], metadata: meta };
      return null;
    }
    if (n !== 0)
      throw new CorruptLogError(
        this.where,
        0,
        `event ${open.events.length + 1} of ${open.size} of the command at seq ${open.seq}`,
        `found a new command at seq ${seq}`,
      );
    open.events.push(event);
    open.ids.push(id);
    open.versions.push(version);
    if (open.events.length < open.size) return null;
    this.open = null;
    return groupOfRows(open, this.where);
  }
}
