import {
  AppClosedError,
  type CompactionResult,
  type EventGroup,
  type EventStore,
  type JsonValue,
  type ReplayEnd,
  type ReplayOptions,
  type ReplaySink,
  type StoreContext,
  type StoreOpenInfo,
} from 'appendonly';

/**
 * A compacting store that keeps every event, as PostgreSQL's `keepHistory: true` does: a
 * replay reads the last snapshot and the events above it; `replay({ after })` reads the kept
 * events after any seq, snapshot or not. In memory, and reopenable, as MemoryStore.
 */
export class HistoryStore implements EventStore {
  readonly kind = 'history-memory';
  readonly groups: EventGroup[] = [];
  snapshot: { seq: number; entries: [string, JsonValue][]; projectionsVersion?: string } | null = null;
  private context: StoreContext | null = null;

  async open(context: StoreContext): Promise<StoreOpenInfo> {
    this.context = context;
    return { kind: this.kind, location: 'history-memory', created: this.groups.length === 0, sizeBytes: 0 };
  }

  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    let after = options?.after;
    if (after === undefined && this.snapshot !== null) {
      const { seq, entries, projectionsVersion } = this.snapshot;
      sink.snapshot(seq, projectionsVersion === undefined ? undefined : { projectionsVersion });
      for (const [key, value] of entries) sink.entry(key, value);
      after = seq;
    }
    for (const g of this.groups) if (g.seq > (after ?? 0)) sink.group(g);
    const last = this.groups[this.groups.length - 1];
    return { lastSeq: last === undefined ? (this.snapshot?.seq ?? 0) : last.seq + last.events.length - 1 };
  }

  async append(group: EventGroup): Promise<void> {
    if (this.context === null) throw new AppClosedError('the HistoryStore is closed');
    this.groups.push(group);
  }

  async compact(): Promise<CompactionResult> {
    if (this.context === null) throw new AppClosedError('the HistoryStore is closed');
    const snapshot = this.context.snapshots.takeSnapshot();
    try {
      this.snapshot = {
        seq: snapshot.seq,
        entries: [...snapshot.entries()],
        ...(snapshot.projectionsVersion === undefined
          ? {}
          : { projectionsVersion: snapshot.projectionsVersion }),
      };
    } finally {
      snapshot.release();
    }
    const keys = this.snapshot.entries.length;
    return { seq: this.snapshot.seq, keys, sizeBefore: 0, sizeAfter: 0, durationMs: 0 };
  }

  async close(): Promise<void> {
    this.context = null;
  }
}
