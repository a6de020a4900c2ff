import {
  AppendConflictError,
  type EventGroup,
  type EventStore,
  type JsonValue,
  LogCompactedError,
  type ReplayEnd,
  type ReplayOptions,
  type ReplaySink,
  type StoreOpenInfo,
} from 'appendonly';

/**
 * One log that several stores append to, as several processes share one database table: the
 * head moves when any of them appends. `rival`, when set, is another writer that appends a
 * command of its own just before each of ours lands (a log that is never quiet).
 */
export class SharedLog {
  readonly groups: EventGroup[] = [];
  rival: (() => EventGroup) | null = null;
  /** The last compaction's snapshot: the state at `seq`; the groups it covers are gone. */
  snapshot: { readonly seq: number; readonly entries: Record<string, JsonValue> } | null = null;
  /**
   * Called by a whole replay between the snapshot's entries and the groups after it, and
   * awaited: a test looks at an app half way through a reload, or fails the read there.
   */
  betweenSnapshotAndGroups: (() => Promise<void>) | null = null;

  /** A compaction: `entries` (the state at the head) become the snapshot, and every group goes. */
  compact(entries: Record<string, JsonValue>): void {
    this.snapshot = { seq: this.head, entries };
    this.groups.length = 0;
  }
  /** Stores watching the log: told, one turn later, when another store appended. */
  readonly watchers = new Set<{ store: SharedLogStore; changed: (head?: number) => void }>();

  /** Records `group` as appended by `by`, and tells the other watchers. */
  push(group: EventGroup, by: SharedLogStore | null): void {
    this.groups.push(group);
    const head = this.head;
    for (const w of this.watchers) if (w.store !== by) setImmediate(() => w.changed(head));
  }

  get head(): number {
    const last = this.groups[this.groups.length - 1];
    return last === undefined ? (this.snapshot?.seq ?? 0) : last.seq + last.events.length - 1;
  }
}

/**
 * A store on a {@link SharedLog} with the conflict rule of a shared log: an append lands only
 * if its seq is the head + 1 (another writer has not appended meanwhile), one event-loop turn
 * after it was made (a round trip to the database). After a conflict it refuses every append
 * until a replay has read up to the head, as the contract says.
 */
export class SharedLogStore implements EventStore {
  readonly kind = 'shared-memory';
  readonly sharedLog = true;
  /** Appends that landed, and conflicts refused: what the tests check. */
  landed = 0;
  conflicts = 0;
  private stale = false;

  /** With `watch`, the store tells the App when others appended, as a database store's NOTIFY does. */
  constructor(
    private readonly log: SharedLog,
    options: { readonly watch?: boolean } = {},
  ) {
    if (options.watch) {
      this.watch = (changed) => {
        const watcher = { store: this, changed };
        log.watchers.add(watcher);
        return () => log.watchers.delete(watcher);
      };
    }
  }

  readonly watch?: (changed: (head?: number) => void) => () => void;

  async head(): Promise<number> {
    return this.log.head;
  }

  async open(): Promise<StoreOpenInfo> {
    return { kind: this.kind, location: 'memory', created: this.log.groups.length === 0, sizeBytes: 0 };
  }

  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    const log = this.log;
    const snapshot = log.snapshot;
    let after = options?.after ?? 0;
    if (snapshot !== null) {
      if (options?.after === undefined) {
        sink.snapshot(snapshot.seq);
        for (const [key, value] of Object.entries(snapshot.entries)) sink.entry(key, value);
        await log.betweenSnapshotAndGroups?.();
        after = snapshot.seq;
      } else if (after < snapshot.seq) {
        throw new LogCompactedError(after, snapshot.seq + 1, 'the shared log');
      }
    }
    for (const group of log.groups) if (group.seq > after) sink.group(group);
    this.stale = false;
    return { lastSeq: this.log.head };
  }

  append(group: EventGroup): Promise<void> {
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        const log = this.log;
        if (log.rival !== null && !this.stale) log.push(log.rival(), null);
        if (this.stale || group.seq !== log.head + 1) {
          this.stale = true;
          this.conflicts++;
          reject(new AppendConflictError(`seq ${group.seq} is taken: the log is at ${log.head}`, log.head));
          return;
        }
        log.push(group, this);
        this.landed++;
        resolve();
      });
    });
  }

  async close(): Promise<void> {}
}
