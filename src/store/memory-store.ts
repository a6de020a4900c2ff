import type { JsonValue } from '../events/json';
import { AppClosedError, LogCompactedError, StoreLockedError } from '../errors';
import type {
  CompactionResult,
  EventGroup,
  EventStore,
  ReplayEnd,
  ReplayOptions,
  ReplaySink,
  StoreContext,
  StoreOpenInfo,
  StoreStats,
} from './event-store';

/** Every append is durable at once: one settled promise serves them all. */
const DURABLE = Promise.resolve();

/** Options of {@link MemoryStore}; sizes count records (keys and groups), not bytes. */
export interface MemoryStoreOptions {
  /** Compact automatically when the log has grown by this percent since the last compaction; 0 never. Default 100. */
  readonly autoRewritePercentage?: number;
  /** ...and holds more than this many records. Default 65,536. */
  readonly autoRewriteMinSize?: number;
}

/**
 * A store that keeps the log in memory: for tests, and as the reference the conformance suite
 * holds the durable stores to. The log outlives `close()`, so one instance can be reopened to
 * check what a replay gives. Groups are kept as given: events are treated as immutable. Like
 * the durable stores it compacts itself on Redis's trigger, so a long run keeps its memory bounded.
 */
export class MemoryStore implements EventStore {
  readonly kind = 'memory';
  private readonly autoRewritePercentage: number;
  private readonly autoRewriteMinSize: number;
  private snapshotSeq = 0;
  /** The last compaction's state as parallel arrays: a tuple per key would cost the GC more than the copy. */
  private snapshotKeys: string[] = [];
  private snapshotValues: JsonValue[] = [];
  private groups: EventGroup[] = [];
  private context: StoreContext | null = null;
  private lastSeq = 0;
  private rewrites = 0;
  private lastRewriteTimeSec = -1;

  constructor(options: MemoryStoreOptions = {}) {
    this.autoRewritePercentage = options.autoRewritePercentage ?? 100;
    this.autoRewriteMinSize = options.autoRewriteMinSize ?? 65_536;
  }

  async open(context: StoreContext): Promise<StoreOpenInfo> {
    if (this.context !== null) throw new StoreLockedError('this MemoryStore is already open');
    this.context = context;
    return {
      kind: this.kind,
      location: 'memory',
      created: this.snapshotSeq === 0 && this.groups.length === 0,
      sizeBytes: 0,
    };
  }

  /** Hands the snapshot and the groups to `sink`, synchronously: nothing to wait for in memory. */
  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    this.assertOpen();
    const after = options?.after;
    if (after === undefined) {
      if (this.snapshotSeq > 0) {
        sink.snapshot(this.snapshotSeq);
        const keys = this.snapshotKeys;
        const values = this.snapshotValues;
        for (let i = 0; i < keys.length; i++) sink.entry(keys[i], values[i]);
      }
    } else if (this.snapshotSeq > after) {
      throw new LogCompactedError(after, this.snapshotSeq + 1, 'the MemoryStore');
    }
    const groups = this.groups;
    for (let i = 0; i < groups.length; i++)
      if (after === undefined || groups[i].seq > after) sink.group(groups[i]);
    return { lastSeq: Math.max(this.lastSeq, this.snapshotSeq) };
  }

  append(group: EventGroup): Promise<void> {
    if (this.context === null) return Promise.reject(new AppClosedError('the MemoryStore is closed'));
    this.groups.push(group);
    this.lastSeq = group.seq + group.events.length - 1;
    // Compacts right here rather than later: a memory store's appends resolve at once, so a busy
    // app may never yield to the event loop, and a deferred rewrite would never run. The state
    // already holds this group, which is what the snapshot must cover.
    if (this.shouldRewrite()) this.compactNow();
    return DURABLE;
  }

  async compact(): Promise<CompactionResult> {
    return this.compactNow();
  }

  private compactNow(): CompactionResult {
    const context = this.assertOpen();
    const started = Date.now();
    const sizeBefore = this.snapshotKeys.length + this.groups.length;
    const snapshot = context.snapshots.takeSnapshot();
    try {
      const keys: string[] = new Array(snapshot.size);
      const values: JsonValue[] = new Array(snapshot.size);
      let n = 0;
      for (const [key, value] of snapshot.entries()) {
        keys[n] = key;
        values[n++] = value;
      }
      keys.length = n;
      values.length = n;
      this.snapshotKeys = keys;
      this.snapshotValues = values;
      this.snapshotSeq = snapshot.seq;
      let kept = this.groups.length;
      while (kept > 0 && this.groups[kept - 1].seq > snapshot.seq) kept--;
      this.groups = this.groups.slice(kept);
    } finally {
      snapshot.release();
    }
    this.rewrites++;
    this.lastRewriteTimeSec = Math.round((Date.now() - started) / 1000);
    return {
      seq: this.snapshotSeq,
      keys: this.snapshotKeys.length,
      sizeBefore,
      sizeAfter: this.snapshotKeys.length + this.groups.length,
      durationMs: Date.now() - started,
    };
  }

  /** Redis's trigger: `current > min-size` and `current*100/base - 100 >= percentage`. */
  private shouldRewrite(): boolean {
    if (this.autoRewritePercentage <= 0) return false;
    const current = this.snapshotKeys.length + this.groups.length;
    if (current <= this.autoRewriteMinSize) return false;
    return (current * 100) / Math.max(this.snapshotKeys.length, 1) - 100 >= this.autoRewritePercentage;
  }

  /** Compaction counters; sizes count records (keys of the snapshot and groups), not bytes. */
  stats(): StoreStats {
    return {
      kind: this.kind,
      rewrites: this.rewrites,
      lastRewriteTimeSec: this.lastRewriteTimeSec,
      currentSize: this.snapshotKeys.length + this.groups.length,
      baseSize: this.snapshotKeys.length,
    };
  }

  async close(): Promise<void> {
    this.context = null;
  }

  private assertOpen(): StoreContext {
    if (this.context === null) throw new AppClosedError('the MemoryStore is not open');
    return this.context;
  }
}
