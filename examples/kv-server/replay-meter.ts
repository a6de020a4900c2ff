import type {
  CompactionResult,
  EventGroup,
  EventStore,
  ReplayEnd,
  ReplayOptions,
  ReplayProgress,
  ReplaySink,
  StoreContext,
  StoreOpenInfo,
  StoreStats,
} from 'appendonly';

/**
 * An EventStore that passes everything to the store it wraps and counts what `replay` hands
 * over, so that the server can print events/s while it loads. The bytes come from the store
 * itself (`replayProgress`); the events can only be counted on their way to the app. It has the
 * capabilities of the store it wraps, and no others.
 */
export class ReplayMeter implements EventStore {
  /** Events (and snapshot keys) replayed so far. */
  events = 0;
  readonly compact?: () => Promise<CompactionResult>;
  readonly recover?: () => Promise<void>;
  readonly stats?: () => StoreStats;
  readonly replayProgress?: () => ReplayProgress;
  // A shared log's capabilities (PostgreSQL): without them the App would neither keep undo
  // information for conflicts nor follow the other instances' commands.
  readonly sharedLog?: boolean;
  readonly watch?: (changed: (head?: number) => void) => () => void;
  readonly head?: () => Promise<number>;

  constructor(readonly inner: EventStore) {
    if (inner.sharedLog !== undefined) this.sharedLog = inner.sharedLog;
    if (inner.watch) this.watch = (changed) => inner.watch!(changed);
    if (inner.head) this.head = () => inner.head!();
    if (inner.compact) this.compact = () => inner.compact!();
    if (inner.recover) this.recover = () => inner.recover!();
    if (inner.stats) this.stats = () => inner.stats!();
    if (inner.replayProgress) this.replayProgress = () => inner.replayProgress!();
  }

  get kind(): string {
    return this.inner.kind;
  }

  open(context: StoreContext): Promise<StoreOpenInfo> {
    return this.inner.open(context);
  }

  replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    const counting: ReplaySink = {
      snapshot: (seq, info) => sink.snapshot(seq, info),
      entry: (key, value) => {
        this.events++;
        sink.entry(key, value);
      },
      group: (group, position) => {
        this.events += group.events.length;
        sink.group(group, position);
      },
      set: (seq, time, key, value, position) => {
        this.events++;
        sink.set(seq, time, key, value, position);
      },
    };
    return this.inner.replay(counting, options);
  }

  append(group: EventGroup): Promise<void> {
    return this.inner.append(group);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
