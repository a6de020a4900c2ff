import { Reports } from '../../src/app/reports';
import type { EventGroup } from '../../src/store/event-store';

/** A promise resolved or rejected from outside: the store's `flushed()` of a catch-up. */
function gate(): { promise: Promise<void>; open(): void; fail(): void } {
  let open = () => {};
  let fail = () => {};
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = () => reject(new Error('closed'));
  });
  return { promise, open, fail };
}

/** A group of one event at `seq`: what a report carries. */
const groupAt = (seq: number): EventGroup => ({ seq, time: 0, events: [{ type: 'SET', data: [] }] });

/** Reports whose reports are recorded by seq. */
function recorded(): { reports: Reports; made: number[] } {
  const made: number[] = [];
  return { reports: new Reports((group) => made.push(group.seq)), made };
}

describe('Reports: reports in seq order when some must wait for durability', () => {
  it('makes a report at once while nothing waits', () => {
    const { reports, made } = recorded();
    expect(reports.report(groupAt(1))).toBeNull();
    expect(made).toEqual([1]);
    expect(reports.waiting).toBe(false);
  });

  it('holds the reports after a waiting one until it is made, then makes them in order', async () => {
    // given: a catch-up's reports (seq 1 and 2, another writer's) waiting for the flush
    const { reports, made } = recorded();
    const flush = gate();
    void reports.whenReady([groupAt(1), groupAt(2)], () => flush.promise);
    // when: this instance's own command (seq 3) becomes durable meanwhile
    const own = reports.report(groupAt(3));
    await new Promise((resolve) => setImmediate(resolve));
    // then: nothing is reported before the flush, and all after it, in order
    expect(own).not.toBeNull();
    expect(made).toEqual([]);
    expect(reports.waiting).toBe(true);
    flush.open();
    await own;
    expect(made).toEqual([1, 2, 3]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reports.waiting).toBe(false);
    expect(reports.report(groupAt(4))).toBeNull();
    expect(made).toEqual([1, 2, 3, 4]);
  });

  it('drops the reports whose flush fails (the store closed), and still makes those after', async () => {
    const { reports, made } = recorded();
    const flush = gate();
    const dropped = reports.whenReady([groupAt(1)], () => flush.promise);
    const own = reports.report(groupAt(2));
    flush.fail();
    await dropped;
    await own;
    expect(made).toEqual([2]);
  });
});
