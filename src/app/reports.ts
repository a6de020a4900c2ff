/**
 * Reports (`events$`, the consumers' ring) in seq order when some of them must wait: the other
 * writers' commands a catch-up applied are reported only once the store says they are durable
 * (`EventStore.flushed`), and every report made after them, this instance's own commands
 * included, waits its turn behind them. Invariant: while `waiting` is false nothing is queued,
 * and a report is made at once, as without this queue.
 */
export class Reports {
  private tail: Promise<void> | null = null;

  /** True while a report waits: later ones must queue behind it. */
  get waiting(): boolean {
    return this.tail !== null;
  }

  /**
   * Makes `report` after every report queued before it, and once `ready` resolves; a `ready`
   * that rejects (the store closed first) drops it. Resolves once it was made or dropped.
   */
  queue(report: () => void, ready?: () => Promise<void>): Promise<void> {
    const previous = this.tail ?? Promise.resolve();
    const gate = ready === undefined ? previous : Promise.all([previous, ready()]);
    const tail = gate.then(report, () => {});
    this.tail = tail;
    void tail.then(() => {
      if (this.tail === tail) this.tail = null;
    });
    return tail;
  }
}
