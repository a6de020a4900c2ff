import type { EventGroup } from '../store/event-store';

/**
 * The App's one report path (`events$`, the consumers' ring), in seq order whoever committed a
 * group: the other writers' commands a catch-up applied are reported only once the store says
 * they are durable (`EventStore.flushed`), and every report made after them, this instance's own
 * commands included, waits its turn behind them. Invariant: while `waiting` is false nothing is
 * queued, and a report is made at once, as without this queue.
 */
export class Reports {
  private tail: Promise<void> | null = null;

  /** `make` reports one durable group (the ring, then `events$`). */
  constructor(private readonly make: (group: EventGroup) => void) {}

  /** True while a report waits: later ones must queue behind it. */
  get waiting(): boolean {
    return this.tail !== null;
  }

  /**
   * Reports `group` at once (returns null) unless a report waits; then behind it (returns the
   * promise of that report). Takes the group, not a closure: called for every command.
   */
  report(group: EventGroup): Promise<void> | null {
    if (this.tail === null) {
      this.make(group);
      return null;
    }
    return this.enqueue(() => this.make(group));
  }

  /**
   * Reports `groups` once `ready` resolves, behind every report queued before; a `ready` that
   * rejects (the store closed first) drops them. Resolves once they were made or dropped.
   */
  whenReady(groups: readonly EventGroup[], ready: () => Promise<void>): Promise<void> {
    return this.enqueue(() => {
      for (const group of groups) this.make(group);
    }, ready);
  }

  private enqueue(report: () => void, ready?: () => Promise<void>): Promise<void> {
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
