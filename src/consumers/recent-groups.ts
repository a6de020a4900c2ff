import type { EventGroup } from '../store/event-store';

/**
 * The last durable groups the App committed (or caught up with), in seq order, so that a
 * consumer near the head reads them from memory instead of the store. Invariant: the ring holds
 * one dense run of seqs (each group starts right after the one before it); a group that does
 * not follow (after a reload) empties it first, so a read from it never has a gap. Bounded by
 * `capacity` groups: the oldest go first.
 *
 * It is also the durability signal: `version` moves on every group (and on `poke`), and
 * `changed(version)` resolves once it has moved past the one a reader saw.
 */
export class RecentGroups {
  private readonly ring: (EventGroup | undefined)[];
  /** Index of the oldest group, and how many there are. */
  private head = 0;
  private count = 0;
  private waiters: (() => void)[] = [];
  /** Moves on every durable group and every poke: a reader waits for it to move. */
  version = 0;
  /**
   * Groups are kept only while a consumer runs: an App without consumers holds no events (a
   * ring of large values would cost memory for nothing). Turned off, the ring empties.
   */
  private on = false;

  /** True while groups are kept (a consumer runs). */
  get keeping(): boolean {
    return this.on;
  }

  constructor(private readonly capacity = 1024) {
    this.ring = new Array(capacity);
  }

  /** Keeps groups from now on (a consumer runs), or stops and forgets them. */
  keep(on: boolean): void {
    if (!on && this.on) this.clear();
    this.on = on;
  }

  /** A group became durable (in seq order). */
  push(group: EventGroup): void {
    if (!this.on) {
      this.poke();
      return;
    }
    if (this.count > 0) {
      const last = this.ring[(this.head + this.count - 1) % this.capacity]!;
      if (group.seq !== last.seq + last.events.length) this.clear();
    }
    if (this.count === this.capacity) {
      this.ring[this.head] = undefined;
      this.head = (this.head + 1) % this.capacity;
      this.count--;
    }
    this.ring[(this.head + this.count) % this.capacity] = group;
    this.count++;
    this.poke();
  }

  /** Forgets every group (the state was reloaded: what the ring holds may not be the log's). */
  clear(): void {
    this.ring.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  /** Wakes the readers without a group (another writer's commands, a close). */
  poke(): void {
    this.version++;
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once `version` is past `seen`. */
  changed(seen: number): Promise<void> {
    if (this.version !== seen) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /**
   * The groups holding events after `after`, up to about `limit` events, when the ring holds
   * the one right after `after` (null otherwise: read the store).
   */
  read(after: number, limit: number): EventGroup[] | null {
    if (this.count === 0) return null;
    const first = this.ring[this.head]!;
    if (first.seq > after + 1) return null;
    // Binary search for the first group whose last seq is after `after`.
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const g = this.ring[(this.head + mid) % this.capacity]!;
      if (g.seq + g.events.length - 1 <= after) lo = mid + 1;
      else hi = mid;
    }
    if (lo === this.count) return null;
    const out: EventGroup[] = [];
    let events = 0;
    for (let i = lo; i < this.count && (out.length === 0 || events < limit); i++) {
      const g = this.ring[(this.head + i) % this.capacity]!;
      out.push(g);
      events += g.events.length;
    }
    return out;
  }
}
