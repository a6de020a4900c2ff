/** Where a group starts in an incr file: its offset, its first seq, the `#TS` clock before it (-1: none). */
export interface SeqPoint {
  readonly offset: number;
  readonly seq: number;
  readonly ts: number;
}

/**
 * A sparse seq → offset index of the incr files, so that `read(after)` starts near `after`
 * rather than at the start of a file: one point per `spacing` bytes, noted as replay and reads go
 * by. Invariant: a file's points are in offset and seq order, and each is the start of a group
 * (its `#TS` line, else its first record), which never moves once written (files only grow at
 * the end, or are cut after a failure: `forget` drops a file's points then).
 */
export class SeqIndex {
  private readonly files = new Map<string, SeqPoint[]>();

  constructor(private readonly spacing = 64 * 1024) {}

  note(file: string, offset: number, seq: number, ts: number): void {
    let points = this.files.get(file);
    if (points === undefined) {
      points = [];
      this.files.set(file, points);
    }
    const last = points[points.length - 1];
    if (last === undefined || (offset - last.offset >= this.spacing && seq > last.seq))
      points.push({ offset, seq, ts });
  }

  /** The last point of `file` whose group starts at or before `seq`. */
  find(file: string, seq: number): SeqPoint | undefined {
    const points = this.files.get(file);
    if (points === undefined) return undefined;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid].seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? undefined : points[lo - 1];
  }

  /** Drops every file not in `names` (compacted away), or all of them. */
  forget(names?: ReadonlySet<string>): void {
    for (const f of [...this.files.keys()]) if (names === undefined || !names.has(f)) this.files.delete(f);
  }
}
