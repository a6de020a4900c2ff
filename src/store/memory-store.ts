import type { DomainEvent, EventMetadata } from '../events/event';
import type { JsonValue } from '../events/json';
import { AppClosedError, LogCompactedError, StaleConsumerError, StoreLockedError } from '../errors';
import {
  type AutoRewriteSettings,
  CompactionScheduler,
  IDLE_COMPACTION_STATS,
  OptionReader,
  planRetention,
  SHARED_DEFAULTS,
} from '../kit/index';
import type {
  CompactionResult,
  ConsumerRecord,
  EventGroup,
  EventStore,
  ReplayEnd,
  ReplayOptions,
  ReplaySink,
  RetentionStats,
  StoreContext,
  StoreOpenInfo,
  StoreStats,
} from './event-store';
import type { SnapshotSource } from './snapshot-source';

/** Every append is durable at once: one settled promise serves them all. */
const DURABLE = Promise.resolve();
/** Writes never fail in memory. */
const HEALTHY = { error: null, failures: 0 } as const;

/** Options of {@link MemoryStore}; sizes count records (keys and groups), not bytes. */
export interface MemoryStoreOptions {
  /** Compact automatically when the log has grown by this percent since the last compaction; 0 never. Default 100. */
  readonly autoRewritePercentage?: number;
  /** ...and holds more than this many records. Default 65,536. */
  readonly autoRewriteMinSize?: number;
  /** A consumer further behind than this many events at a compaction is marked stale. Default 1,000,000. */
  readonly maxConsumerLag?: number;
}

/**
 * A store that keeps the log in memory: for tests, and as the reference the conformance suite
 * holds the durable stores to. The log outlives `close()`, so one instance can be reopened to
 * check what a replay gives. Groups keep the events, ids and metadata given: they are treated as immutable. Like
 * the durable stores it compacts itself on Redis's trigger, with the same scheduler (sizes count
 * records), so a long run keeps its memory bounded and `compact()` behaves as theirs.
 */
export class MemoryStore implements EventStore {
  readonly kind = 'memory';
  private readonly settings: AutoRewriteSettings;
  private snapshotSeq = 0;
  /** The projections version the snapshot's state was computed by (undefined: unversioned). */
  private snapshotVersion: string | undefined = undefined;
  /** The last compaction's state as parallel arrays: a tuple per key would cost the GC more than the copy. */
  private snapshotKeys: string[] = [];
  private snapshotValues: JsonValue[] = [];
  private groups = new GroupColumns();
  /**
   * Groups below the snapshot kept for consumers (see `src/kit/retention.ts`): read by `read`,
   * never by `replay`, not counted in `size()`; one run of seqs ending at the snapshot's.
   */
  private kept: EventGroup[] = [];
  private retention: RetentionStats | undefined = undefined;
  private readonly maxConsumerLag: number;
  private context: StoreContext | null = null;
  private scheduler: CompactionScheduler | null = null;
  private lastSeq = 0;
  /** Consumers' records: like the log, they outlive `close()`. */
  private readonly consumers = new Map<string, ConsumerRecord>();
  /** `append` stores a reaction's position with its group (see `EventStore.reactions`). */
  readonly reactions = true;

  constructor(options: MemoryStoreOptions = {}) {
    const o = new OptionReader(
      'MemoryStore',
      options,
      ['autoRewritePercentage', 'autoRewriteMinSize', 'maxConsumerLag'],
      '{}',
    );
    this.maxConsumerLag = o.integer('maxConsumerLag', SHARED_DEFAULTS.maxConsumerLag, 0);
    this.settings = {
      autoRewritePercentage: o.integer('autoRewritePercentage', SHARED_DEFAULTS.autoRewritePercentage, 0),
      autoRewriteMinSize: o.integer('autoRewriteMinSize', 65_536, 0),
    };
  }

  async open(context: StoreContext): Promise<StoreOpenInfo> {
    if (this.context !== null) throw new StoreLockedError('this MemoryStore is already open');
    this.context = context;
    this.scheduler = new CompactionScheduler(this.settings, context, {
      unit: 'records',
      writes: HEALTHY,
      size: () => this.size(),
      run: async (snapshots) => this.compactNow(snapshots),
    });
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
        const version = this.snapshotVersion;
        sink.snapshot(this.snapshotSeq, version === undefined ? undefined : { projectionsVersion: version });
        const keys = this.snapshotKeys;
        const values = this.snapshotValues;
        for (let i = 0; i < keys.length; i++) sink.entry(keys[i], values[i]);
      }
    } else if (this.snapshotSeq > after) {
      throw new LogCompactedError(after, this.snapshotSeq + 1, 'the MemoryStore');
    }
    const groups = this.groups;
    for (let i = 0; i < groups.length; i++)
      if (after === undefined || groups.seq(i) > after) sink.group(groups.at(i));
    return { lastSeq: Math.max(this.lastSeq, this.snapshotSeq) };
  }

  /** The groups holding events after `after`: a binary search on the groups' last seqs (the kept ones first). */
  async read(after: number, limit: number): Promise<readonly EventGroup[]> {
    this.assertOpen();
    // The kept groups (below the snapshot) come first, then the log's: one run of seqs.
    let kept: readonly EventGroup[] = [];
    if (this.snapshotSeq > after) {
      const first = this.kept[0]?.seq ?? this.snapshotSeq + 1;
      if (first > after + 1) throw new LogCompactedError(after, first, 'the MemoryStore');
      kept = this.kept;
    }
    const columns = this.groups;
    const k = kept.length;
    const total = k + columns.length;
    const lastSeqOf = (i: number) =>
      i < k ? kept[i].seq + kept[i].events.length - 1 : columns.lastSeq(i - k);
    let lo = 0;
    let hi = total;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (lastSeqOf(mid) <= after) lo = mid + 1;
      else hi = mid;
    }
    const out: EventGroup[] = [];
    let events = 0;
    for (let i = lo; i < total && (out.length === 0 || events < limit); i++) {
      const g = i < k ? kept[i] : columns.at(i - k);
      out.push(g);
      events += g.events.length;
    }
    return out;
  }

  async loadConsumers(): Promise<readonly ConsumerRecord[]> {
    this.assertOpen();
    return [...this.consumers.values()];
  }

  /** Replaces the record; a stored stale mark stays (see `EventStore.saveConsumer`). */
  async saveConsumer(record: ConsumerRecord): Promise<void> {
    this.assertOpen();
    const stale = this.consumers.get(record.name)?.stale;
    if (stale !== undefined && record.stale === undefined)
      throw new StaleConsumerError(record.name, `a compaction at seq ${stale.seq} marked it stale`);
    this.consumers.set(record.name, { ...record, parked: [...record.parked] });
  }

  async deleteConsumer(name: string): Promise<boolean> {
    this.assertOpen();
    return this.consumers.delete(name);
  }

  append(group: EventGroup): Promise<void> {
    if (this.context === null) return Promise.reject(new AppClosedError('the MemoryStore is closed'));
    const consumer = group.consumer;
    if (consumer !== undefined) {
      // The reaction's position in the same step as its events; the log keeps the group only.
      const record = this.consumers.get(consumer.name);
      if (record !== undefined && record.position < consumer.position)
        this.consumers.set(consumer.name, { ...record, position: consumer.position });
    }
    this.groups.push(group); // without its consumer
    this.lastSeq = group.seq + group.events.length - 1;
    // Checked right here: a memory store's appends resolve at once, so a busy app may never
    // yield to the event loop; the scheduler starts the compaction in a microtask, which runs.
    const scheduler = this.scheduler!;
    scheduler.appended();
    scheduler.maybeCompact();
    return DURABLE;
  }

  compact(): Promise<CompactionResult> {
    if (this.scheduler === null || this.context === null)
      return Promise.reject(new AppClosedError('the MemoryStore is not open'));
    return this.scheduler.compact();
  }

  /** Records held: snapshot keys and groups (the memory store's "bytes"). */
  private size(): number {
    return this.snapshotKeys.length + this.groups.length;
  }

  /** One compaction, all synchronous: snapshot, copy, drop the covered groups. */
  private compactNow(snapshots: SnapshotSource): CompactionResult {
    this.assertOpen();
    const started = Date.now();
    const sizeBefore = this.size();
    const snapshot = snapshots.takeSnapshot();
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
      this.snapshotVersion = snapshot.projectionsVersion;
      let covered = this.groups.length;
      while (covered > 0 && this.groups.seq(covered - 1) > snapshot.seq) covered--;
      const plan = planRetention(
        [...this.consumers.values()],
        snapshot.seq,
        this.maxConsumerLag,
        this.assertOpen().clock.now(),
      );
      for (const r of plan.marked) this.consumers.set(r.name, r);
      this.retention = plan.stats;
      const keepAfter = plan.keepAfter;
      this.kept =
        keepAfter === null
          ? []
          : [...this.kept, ...this.groups.slice(0, covered)].filter(
              (g) => g.seq + g.events.length - 1 > keepAfter,
            );
      this.groups.dropFirst(covered);
    } finally {
      snapshot.release();
    }
    return {
      seq: this.snapshotSeq,
      keys: this.snapshotKeys.length,
      sizeBefore,
      sizeAfter: this.size(),
      durationMs: Date.now() - started,
    };
  }

  /** Compaction counters; sizes count records (keys of the snapshot and groups), not bytes. */
  stats(): StoreStats {
    return {
      kind: this.kind,
      ...(this.scheduler?.stats() ?? { ...IDLE_COMPACTION_STATS, currentSize: this.size() }),
      ...(this.retention !== undefined ? { retention: this.retention } : {}),
    };
  }

  async close(): Promise<void> {
    if (this.context === null) return;
    this.scheduler?.stop(new AppClosedError('the MemoryStore is closing'));
    await this.scheduler?.idle();
    this.context = null;
  }

  private assertOpen(): StoreContext {
    if (this.context === null) throw new AppClosedError('the MemoryStore is not open');
    return this.context;
  }
}

/**
 * The groups of the log after the snapshot, kept as columns rather than as the group objects
 * appended: one number or reference per field in arrays that live in the old generation, so a
 * group costs the young generation nothing once appended (a group object, its events array and
 * its ids array per command, all surviving to the next compaction, were most of what each
 * scavenge copied). A one-event group keeps its event and its id without their arrays.
 * `at(i)` hands back a group equal to the one appended (the same events, ids and metadata
 * objects, no `consumer`), with no key for an absent field.
 */
class GroupColumns {
  private seqs: number[] = [];
  private times: number[] = [];
  private events: (DomainEvent | readonly DomainEvent[])[] = [];
  private ids: (string | readonly string[] | undefined)[] = [];
  private versions: (readonly number[] | undefined)[] = [];
  private metadata: (EventMetadata | undefined)[] = [];

  get length(): number {
    return this.seqs.length;
  }

  /** Keeps `group` (its `consumer`, if any, is not kept). */
  push(group: EventGroup): void {
    const { events, ids } = group;
    this.seqs.push(group.seq);
    this.times.push(group.time);
    this.events.push(events.length === 1 ? events[0] : events);
    this.ids.push(ids !== undefined && ids.length === 1 ? ids[0] : ids);
    this.versions.push(group.versions);
    this.metadata.push(group.metadata);
  }

  /** The first seq of group `i`. */
  seq(i: number): number {
    return this.seqs[i];
  }

  /** The last seq of group `i`. */
  lastSeq(i: number): number {
    const e = this.events[i];
    return this.seqs[i] + (Array.isArray(e) ? e.length : 1) - 1;
  }

  /** Group `i`, as appended. */
  at(i: number): EventGroup {
    const e = this.events[i];
    const events: readonly DomainEvent[] = Array.isArray(e) ? e : [e as DomainEvent];
    const id = this.ids[i];
    const ids = typeof id === 'string' ? [id] : id;
    const versions = this.versions[i];
    const metadata = this.metadata[i];
    const group: { -readonly [K in keyof EventGroup]: EventGroup[K] } = {
      seq: this.seqs[i],
      time: this.times[i],
      events,
    };
    if (ids !== undefined) group.ids = ids;
    if (versions !== undefined) group.versions = versions;
    if (metadata !== undefined) group.metadata = metadata;
    return group;
  }

  /** Groups `from` … `to` − 1 as appended. */
  slice(from: number, to: number = this.length): EventGroup[] {
    const out: EventGroup[] = new Array(Math.max(0, to - from));
    for (let i = from; i < to; i++) out[i - from] = this.at(i);
    return out;
  }

  /** Drops the first `n` groups (covered by a new snapshot). */
  dropFirst(n: number): void {
    if (n <= 0) return;
    this.seqs = this.seqs.slice(n);
    this.times = this.times.slice(n);
    this.events = this.events.slice(n);
    this.ids = this.ids.slice(n);
    this.versions = this.versions.slice(n);
    this.metadata = this.metadata.slice(n);
  }
}
