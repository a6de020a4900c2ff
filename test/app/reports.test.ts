import { Reports } from '../../src/app/reports';

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

describe('Reports: reports in seq order when some must wait for durability', () => {
  it('makes a report at once while nothing waits', async () => {
    const reports = new Reports();
    const made: string[] = [];
    await reports.queue(() => made.push('own'));
    expect(made).toEqual(['own']);
    expect(reports.waiting).toBe(false);
  });

  it('holds the reports after a waiting one until it is made, then makes them in order', async () => {
    // given: a catch-up's reports waiting for the flush
    const reports = new Reports();
    const made: string[] = [];
    const flush = gate();
    void reports.queue(
      () => made.push('others'),
      () => flush.promise,
    );
    // when: this instance's own command becomes durable meanwhile
    const own = reports.queue(() => made.push('own'));
    await new Promise((resolve) => setImmediate(resolve));
    // then: nothing is reported before the flush, and both after it, in order
    expect(made).toEqual([]);
    expect(reports.waiting).toBe(true);
    flush.open();
    await own;
    expect(made).toEqual(['others', 'own']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reports.waiting).toBe(false);
  });

  it('drops the reports whose flush fails (the store closed), and still makes those after', async () => {
    const reports = new Reports();
    const made: string[] = [];
    const flush = gate();
    const dropped = reports.queue(
      () => made.push('others'),
      () => flush.promise,
    );
    const own = reports.queue(() => made.push('own'));
    flush.fail();
    await dropped;
    await own;
    expect(made).toEqual(['own']);
  });
});
