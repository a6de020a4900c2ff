import { CorruptLogError, type DomainEvent, type EventGroup, type JsonValue } from '../../src/index';

/** An event row of the SQL stores: seq, time (numbers, or text from pg's bigint), type, data, group size. */
export type EventRow = readonly [
  seq: number | string,
  time: number | string,
  type: string,
  data: string,
  n: number,
];

/**
 * Rows in seq order (one per event; `n` is the group's size on its first row, 0 on the others)
 * → whole groups, up to about `limit` events (at least one group): what a SQL store's `read`
 * returns. A group the rows end inside (cut by the query's LIMIT) is left out for the next read.
 */
export function groupsOfRows(
  rows: readonly EventRow[],
  where: string,
  limit: number,
  parse: (text: string, seq: number) => JsonValue,
): EventGroup[] {
  const out: EventGroup[] = [];
  let events = 0;
  let open: { seq: number; time: number; events: DomainEvent[]; size: number } | null = null;
  for (const row of rows) {
    const seq = Number(row[0]);
    const n = row[4];
    if (open === null) {
      if (n < 1)
        throw new CorruptLogError(
          where,
          0,
          `the first event of a command at seq ${seq}`,
          'found a continuation row',
        );
      if (events >= limit) break;
      open = { seq, time: Number(row[1]), events: [], size: n };
    } else if (n !== 0) {
      throw new CorruptLogError(
        where,
        0,
        `event ${open.events.length + 1} of the command at seq ${open.seq}`,
        `found a new command at seq ${seq}`,
      );
    }
    open.events.push({ type: row[2], data: parse(row[3], seq) });
    if (open.events.length === open.size) {
      out.push({ seq: open.seq, time: open.time, events: open.events });
      events += open.size;
      open = null;
    }
  }
  return out;
}
