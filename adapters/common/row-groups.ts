import { type EventGroup, type JsonValue, CorruptLogError } from '../../src/index';
import { groupOfRows, metadataColumn, type RowGroup } from '../../src/store/row-envelope';

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
  let events = 0;
  let open: RowGroup | null = null;
  for (const row of rows) {
    const seq = Number(row[0]);
    const n = Number(row[4]);
    if (open === null) {
      if (n < 1)
        throw new CorruptLogError(
          where,
          0,
          `the first event of a command at seq ${seq}`,
          'found a continuation row',
        );
      if (events >= limit) break;
      open = {
        seq,
        time: Number(row[1]),
        events: [],
        size: n,
        ids: [],
        versions: [],
        metadata: metadataColumn(row[7], where, seq),
      };
    } else if (n !== 0) {
      throw new CorruptLogError(
        where,
        0,
        `event ${open.events.length + 1} of the command at seq ${open.seq}`,
        `found a new command at seq ${seq}`,
      );
    }
    open.events.push({ type: row[2], data: parse(row[3], seq) });
    open.ids.push(row[5]);
    open.versions.push(row[6] === null ? null : Number(row[6]));
    if (open.events.length === open.size) {
      const { kind: _kind, ...group } = groupOfRows(open, where);
      out.push(group);
      events += open.size;
      open = null;
    }
  }
  return out;
}
