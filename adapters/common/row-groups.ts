import type { EventGroup, JsonValue } from '../../src/index';
import { RowGrouper } from '../../src/store/row-envelope';

/**
 * An event row of the SQL stores: seq, time, type, data, group size, then the envelope columns
 * (id, version: NULL is 1, metadata on the first row). Numbers from SQLite, their text from
 * PostgreSQL (whose reads take every column as text: `TEXT_COLUMNS`).
 */
export type EventRow = readonly [
  seq: number | string,
  time: number | string,
  type: string,
  data: string,
  n: number | string,
  id: string | null,
  version: number | string | null,
  metadata: string | null,
];

/** The columns of an {@link EventRow}, in order, for the stores' SELECTs. */
export const EVENT_ROW_COLUMNS = 'seq, time, type, data, n, id, version, metadata';

/**
 * Rows in seq order (one per event; `n` is the group's size on its first row, 0 on the others)
 * → whole groups with their envelopes, up to about `limit` events (at least one group): what a
 * SQL store's `read` returns. A group the rows end inside (cut by the query's LIMIT) is left out
 * for the next read.
 */
export function groupsOfRows(
  rows: readonly EventRow[],
  where: string,
  limit: number,
  parse: (text: string, seq: number) => JsonValue,
): EventGroup[] {
  const out: EventGroup[] = [];
  const grouper = new RowGrouper(where);
  let events = 0;
  for (const row of rows) {
    if (events >= limit && grouper.pending === null) break;
    const seq = Number(row[0]);
    const version = row[6] === null ? null : Number(row[6]);
    const event = { type: row[2], data: parse(row[3], seq) };
    const record = grouper.add(seq, Number(row[1]), event, Number(row[4]), row[5], version, row[7]);
    if (record === null) continue;
    const { kind: _kind, ...group } = record;
    out.push(group);
    events += group.events.length;
  }
  return out;
}
