import type { ConsumerRecord } from 'appendonly';
import { clampPositions, copyPositions, stripPositions } from '../../cli/consumer-positions';

/** A record at `position` with parked events at `parked`. */
function rec(name: string, position: number, parked: number[] = []): ConsumerRecord {
  return {
    name,
    position,
    parked: parked.map((seq) => ({ seq, type: 'SET', error: 'x', attempts: 1, parkedAt: 0 })),
  };
}

const summary = (changes: ReturnType<typeof stripPositions>) =>
  changes.map((c) => [c.after.name, c.after.position, c.after.parked.map((p) => p.seq)]);

describe('the tools’ position rules', () => {
  it('strip: a position moves down by the removed seqs at or before it; a stripped parked event goes', () => {
    // given: seqs 3 and 7 removed from one numbering run
    const records = [rec('a', 2), rec('b', 3), rec('c', 8, [3, 5, 7, 8])];
    // when
    const changes = stripPositions(records, [7, 3]);
    // then
    expect(summary(changes)).toEqual([
      ['a', 2, []],
      ['b', 2, []],
      ['c', 6, [4, 6]],
    ]);
    expect(changes[0].lines).toEqual([]);
    expect(changes[2].lines).toContain('consumer "c": parked event seq 7 (SET) dropped: it was stripped');
  });

  it('strip: a run started at a fixed seq (an incr with a startseq) keeps its numbering', () => {
    // given: seq 3 removed from the run 1..10; a second run starts at seq 11
    const records = [rec('in-run', 10, [9]), rec('after', 12, [11])];
    // when
    const changes = stripPositions(records, [3], [1, 11]);
    // then: only the first run moves
    expect(summary(changes)).toEqual([
      ['in-run', 9, [8]],
      ['after', 12, [11]],
    ]);
  });

  it('clamp: positions beyond the end go to it, parked events beyond it go', () => {
    // when
    const changes = clampPositions([rec('behind', 2, [1]), rec('ahead', 9, [4, 5, 9])], 4);
    // then
    expect(summary(changes)).toEqual([
      ['behind', 2, [1]],
      ['ahead', 4, [4]],
    ]);
    expect(changes[0].lines).toEqual([]);
    expect(changes[1].lines[0]).toMatch(/^consumer "ahead": position moved from seq 9 to seq 4/);
  });

  it('convert: a record is carried as it is, but behind the snapshot it is marked stale, and past the copy’s end clamped', () => {
    // given: a copy holding the state at seq 10, then events up to seq 100 (the source went on
    // to 140 while it ran)
    const copied = { snapshotSeq: 10, lastSeq: 100, now: 1234 };
    const records = [rec('behind', 4), rec('at', 10), rec('ahead', 140, [60, 120]), rec('end', 100, [50])];
    // when
    const changes = copyPositions(records, copied);
    // then
    expect(summary(changes)).toEqual([
      ['behind', 4, []],
      ['at', 10, []],
      ['ahead', 100, [60]],
      ['end', 100, [50]],
    ]);
    expect(changes.map((c) => c.after.stale)).toEqual([
      { markedAt: 1234, seq: 10, lag: 6 },
      undefined,
      undefined,
      undefined,
    ]);
    expect(changes[0].lines[0]).toMatch(
      /^consumer "behind": marked stale: the events after its position seq 4 up to the snapshot \(seq 10\)/,
    );
    expect(changes[1].lines).toEqual(['consumer "at": carried at position seq 10, 0 parked events']);
    expect(changes[2].lines).toEqual([
      'consumer "ahead": position moved from seq 140 to seq 100 (the source went on past seq 100, where the copy ends, while it ran)',
      'consumer "ahead": parked event seq 120 (SET) dropped: it is after seq 100, where the copy ends (the source was written to while it ran)',
    ]);
    // a record already stale keeps its own mark
    const marked = { ...rec('old', 2), stale: { markedAt: 1, seq: 5, lag: 3 } };
    expect(copyPositions([marked], copied)[0].after).toEqual(marked);
  });
});
