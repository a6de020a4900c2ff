import type { ConsumerRecord, ParkedEvent } from '../src/index';

/*
 * How the tools that change a log's seqs carry the durable consumers' positions: one rule per
 * change, computed here once and used by every format (the format only loads and saves the
 * records, through its store or its database). A stored position must never end up beyond the
 * end of the log: the consumer would refuse to open (ConsumerHub), or worse, silently skip the
 * events appended later under the same seqs.
 */

/** One consumer's record before and after a tool's change, with the lines that say what changed. */
export interface PositionChange {
  readonly before: ConsumerRecord;
  readonly after: ConsumerRecord;
  /** What changed, one line each, naming the consumer; empty when nothing did. */
  readonly lines: readonly string[];
}

/**
 * What a change does to seqs: the new seq of an event that stays, or null for an event that is
 * gone; and the new position of a consumer that had handled everything up to `position`.
 */
interface SeqMap {
  readonly event: (seq: number) => number | null;
  readonly position: (position: number) => number;
  /** Why a parked event is dropped (it is gone from the log), as words after "dropped". */
  readonly gone: string;
  /** Why a position moved, as words after "moved from seq A to seq B". */
  readonly moved: string;
}

function remap(records: readonly ConsumerRecord[], map: SeqMap): PositionChange[] {
  return records.map((before) => {
    const lines: string[] = [];
    const name = JSON.stringify(before.name);
    const position = map.position(before.position);
    if (position !== before.position)
      lines.push(
        `consumer ${name}: position moved from seq ${before.position} to seq ${position} (${map.moved})`,
      );
    const parked: ParkedEvent[] = [];
    for (const p of before.parked) {
      const seq = map.event(p.seq);
      if (seq === null) {
        lines.push(`consumer ${name}: parked event seq ${p.seq} (${p.type}) dropped: ${map.gone}`);
        continue;
      }
      if (seq !== p.seq)
        lines.push(`consumer ${name}: parked event seq ${p.seq} (${p.type}) is now seq ${seq}`);
      parked.push(seq === p.seq ? p : { ...p, seq });
    }
    return { before, after: { name: before.name, position, parked }, lines };
  });
}

/**
 * `truncate` and `check --fix` (a cut tail): the log now ends at `end`. A position beyond it is
 * clamped to `end`; the events after it are gone, so once the log grows again the consumer is
 * handed new events under seqs it had seen before (handlers dedupe on the event's `id`, never
 * its seq). A parked event beyond `end` is gone with the log's tail and is dropped.
 */
export function clampPositions(records: readonly ConsumerRecord[], end: number): PositionChange[] {
  return remap(records, {
    event: (seq) => (seq <= end ? seq : null),
    position: (p) => Math.min(p, end),
    gone: `the log was cut after seq ${end}`,
    moved: `the log was cut after seq ${end}; the next events appended reuse the seqs after it`,
  });
}

/**
 * `strip`: the events at `removed` (their seqs before the strip) are gone and every later one
 * of the same numbering run moves down by the number removed before it. A position p becomes p
 * minus the removed seqs ≤ p of its run (the consumer keeps exactly the events it had not
 * handled ahead of it); a parked event moves the same way, and one that was stripped is dropped.
 *
 * `runStarts` are the seqs at which the log's numbering restarts from a fixed value (an AOF incr
 * file whose manifest line gives its `startseq`): the events from there on keep their seqs
 * whatever was removed before, so a removal counts only up to the next run start. A log with a
 * single run passes none.
 */
export function stripPositions(
  records: readonly ConsumerRecord[],
  removed: readonly number[],
  runStarts: readonly number[] = [],
): PositionChange[] {
  const gone = [...new Set(removed)].sort((a, b) => a - b);
  const starts = [...new Set(runStarts)].sort((a, b) => a - b);
  // The number of sorted values ≤ seq (binary search: a strip may remove many records).
  const atOrBelow = (sorted: readonly number[], seq: number): number => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const shift = (seq: number): number => {
    const k = atOrBelow(starts, seq);
    const runStart = k === 0 ? Number.NEGATIVE_INFINITY : starts[k - 1];
    return atOrBelow(gone, seq) - atOrBelow(gone, runStart - 1);
  };
  const isGone = new Set(gone);
  return remap(records, {
    event: (seq) => (isGone.has(seq) ? null : seq - shift(seq)),
    position: (p) => p - shift(p),
    gone: 'it was stripped',
    moved: 'stripped events before it',
  });
}

/** What a `convert` copied: the target holds the state at `snapshotSeq`, then events up to `lastSeq`. */
export interface CopiedRange {
  readonly snapshotSeq: number;
  readonly lastSeq: number;
  /** The stale mark's time, ms since the epoch. */
  readonly now: number;
}

/**
 * `convert`: the target keeps every seq of the source, so a record is carried as it is
 * (position and parked events), into the target store's own consumer storage, but for what the
 * copy does not hold. A consumer behind the snapshot had its events kept for it below the
 * snapshot, which the copy starts from: in the target they are gone, so it is marked stale (as a
 * compaction marks one), never left to look as if it could resume. A position beyond the copy's
 * end (a PostgreSQL source written to while the copy ran) is clamped to it, as `truncate` does.
 */
export function copyPositions(records: readonly ConsumerRecord[], copy: CopiedRange): PositionChange[] {
  return records.map((r) => {
    const name = JSON.stringify(r.name);
    if (r.position > copy.lastSeq) {
      const [c] = remap([r], {
        event: (seq) => (seq <= copy.lastSeq ? seq : null),
        position: (p) => Math.min(p, copy.lastSeq),
        gone: `it is after seq ${copy.lastSeq}, where the copy ends (the source was written to while it ran)`,
        moved: `the source went on past seq ${copy.lastSeq}, where the copy ends, while it ran`,
      });
      return { ...c, after: r.stale === undefined ? c.after : { ...c.after, stale: r.stale } };
    }
    if (r.stale === undefined && r.position < copy.snapshotSeq) {
      const stale = { markedAt: copy.now, seq: copy.snapshotSeq, lag: copy.snapshotSeq - r.position };
      return {
        before: r,
        after: { ...r, stale },
        lines: [
          `consumer ${name}: marked stale: the events after its position seq ${r.position} up to the snapshot (seq ${copy.snapshotSeq}) were kept for it in the source, and the copy starts at the snapshot; app.resetConsumer runs it again`,
        ],
      };
    }
    return {
      before: r,
      after: r,
      lines: [
        `consumer ${name}: carried at position seq ${r.position}, ${r.parked.length} parked event${r.parked.length === 1 ? '' : 's'}`,
      ],
    };
  });
}

/** The changes that actually change a record (those a format must save). */
function changed(changes: readonly PositionChange[]): PositionChange[] {
  return changes.filter((c) => c.lines.length > 0);
}

/** Where a format keeps its consumers' records, as the tools read and write them. */
export interface ConsumerRecordsIo {
  load(): Promise<readonly ConsumerRecord[]> | readonly ConsumerRecord[];
  save(record: ConsumerRecord): Promise<void> | void;
}

/**
 * Loads the consumers' records, applies `rule` and saves each record it changes, printing its
 * lines with `say`: the one path by which every tool and format carries positions. Resolves with
 * the changes made.
 */
export async function carryPositions(
  io: ConsumerRecordsIo,
  rule: (records: readonly ConsumerRecord[]) => PositionChange[],
  say: (line: string) => void,
): Promise<PositionChange[]> {
  const changes = changed(rule(await io.load()));
  for (const c of changes) {
    await io.save(c.after);
    for (const line of c.lines) say(line);
  }
  return changes;
}
