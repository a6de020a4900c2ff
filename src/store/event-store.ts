import type { DomainEvent, EventMetadata } from '../events/event';
import type { JsonValue } from '../events/json';
import type { Clock } from '../runtime/clock';
import type { FsyncPolicy } from './fsync-policy';
import type { Logger } from '../runtime/logger';
import type { CompactionTrace } from '../telemetry/telemetry';
import type { SnapshotSource } from './snapshot-source';

/** The events of one command: appended and replayed all or none. */
export interface EventGroup {
  /** The global sequence number of the first event; the others follow one by one. */
  readonly seq: number;
  /** When the command was applied, in ms since the epoch (0 when the store did not record it). */
  readonly time: number;
  /** At least one event. */
  readonly events: readonly DomainEvent[];
  /**
   * The envelope, logged with the events (absent in a group logged before envelopes existed):
   * one id per event, made when the command was applied (UUIDv7). A store logs them as given and
   * hands them back; absent, readers derive an id from the seq (`legacyEventId`).
   */
  readonly ids?: readonly string[];
  /**
   * The version each event's data was logged at, one per event; absent: every event at version 1.
   * A store logs and hands back the versions as they are: upcasting is its readers' business.
   */
  readonly versions?: readonly number[];
  /** The command's metadata (`execute(command, { metadata })`); absent when it had none. */
  readonly metadata?: EventMetadata;
  /**
   * A reaction's group only (see {@link EventStore.reactions}): the consumer whose handler
   * returned the commands, and its new position. The store makes it durable in the same atomic
   * unit as the events: after a crash both are there or neither. `read` and `replay` never hand
   * it back: a group read from the log has no `consumer`.
   */
  readonly consumer?: ConsumerPosition;
}

/** A consumer's position carried by a reaction's group (`EventGroup.consumer`). */
export interface ConsumerPosition {
  /** The consumer's name; its record exists (the App stores it when the consumer starts). */
  readonly name: string;
  /** The seq of the event that triggered the reaction: the consumer resumes after it. */
  readonly position: number;
}

/** Where a record is in the log, for error messages. Both fields optional. */
export interface LogPosition {
  /** A file name (AOF), a table (SQLite)… */
  readonly file?: string;
  /** The byte offset of the record in `file`, when the store knows it. */
  readonly offset?: number;
}

/**
 * What a store's `replay` hands the log to, record by record, in log order: an optional
 * snapshot (`snapshot`, then its `entry`s), then one call per command. The calls are
 * synchronous, so a store cannot outrun its reader; a throw aborts the replay and the store
 * rejects with that error.
 *
 * `set` is a shortcut a store may take for a command that logged exactly one built-in SET (most
 * of a key-value log), sparing the event objects; it means exactly `group({ seq, time, events:
 * [SET(key, value)], ids: [id], metadata })` (a SET is always version 1). A reader that does not care implements `group` only and fills the rest
 * in with {@link replaySink}.
 */
export interface ReplaySink {
  /**
   * The log starts with a snapshot covering every event up to `seq`; its entries follow. `info`
   * says what the store recorded with it (the projections version it was built with); absent,
   * or without a version, the snapshot is unversioned.
   */
  snapshot(seq: number, info?: SnapshotInfo): void;
  /** One key of the snapshot. */
  entry(key: string, value: JsonValue): void;
  /** One command's events, whole. */
  group(group: EventGroup, position?: LogPosition): void;
  /**
   * A command of exactly one SET (see above); `id` and `metadata` are its envelope's (`id`
   * absent for a SET logged before envelopes).
   */
  set(
    seq: number,
    time: number,
    key: string,
    value: JsonValue,
    position?: LogPosition,
    id?: string,
    metadata?: EventMetadata,
  ): void;
}

/** What a store recorded with a snapshot, handed to `ReplaySink.snapshot`. */
export interface SnapshotInfo {
  /**
   * The projections version of the state the snapshot was taken of
   * (`StateSnapshot.projectionsVersion` at compaction); absent for an unversioned snapshot.
   */
  readonly projectionsVersion?: string;
}

/** Where a replay starts. */
export interface ReplayOptions {
  /**
   * Only the commands after this sequence number, and no snapshot: for a reader that already
   * holds the state up to it (a follower, a consumer, the App catching up after a conflict).
   * When compaction has dropped events after it, the replay rejects with `LogCompactedError`.
   * Absent: the whole log, snapshot first.
   */
  readonly after?: number;
  /**
   * With `after`, on a shared log: hold the log for this instance's next append, so that no
   * other writer can append between the end of this replay and it and that append lands (the
   * App asks for it when it decides in turns, under contention). The store lets the log go when
   * that append ends, or after a short while if none comes. A store may ignore it: the append
   * may then conflict, as any other.
   */
  readonly lock?: boolean;
}

/** How a replay ended. */
export interface ReplayEnd {
  /** The last sequence number in the log (of the snapshot, if no command follows it; 0 for none). */
  readonly lastSeq: number;
}

/** How far a replay has read: bytes of a file, records of a table, in the store's own unit. */
export interface ReplayProgress {
  readonly done: number;
  readonly total: number;
  readonly unit: 'bytes' | 'records';
}

/** What a store found when it opened. */
export interface StoreOpenInfo {
  /** `aof`, `sqlite-wal`, `memory`, … */
  readonly kind: string;
  /** The folder or file the store uses. */
  readonly location: string;
  /** True when there was no log yet. */
  readonly created: boolean;
  /** Bytes of log found, for progress reports during replay (0 when unknown). */
  readonly sizeBytes: number;
}

/** What the app gives its store when it opens it. */
export interface StoreContext {
  /** Where a compacting store takes the snapshot, at the moment it switches logs. */
  readonly snapshots: SnapshotSource;
  readonly logger: Logger;
  readonly clock: Clock;
  /**
   * Present when the app's telemetry records fsync latency: a store that fsyncs its log itself
   * calls it after each successful fsync of appended data, with the seconds it took. (A store
   * whose commit fsyncs inside the database, SQLite `always` or PostgreSQL, has no fsync of its
   * own to time: its append latency is the figure.)
   */
  readonly fsynced?: (seconds: number) => void;
  /**
   * Present when the app's telemetry traces compactions: called as each compaction starts (asked
   * by `compact()` or automatic), its trace ended with the result or the error. The shared
   * compaction scheduler calls it, so a store built on it need do nothing.
   */
  readonly compacting?: () => CompactionTrace | undefined;
}

/** What one compaction did. */
export interface CompactionResult {
  /** The last sequence number the new base covers. */
  readonly seq: number;
  /** Keys written to the new base. */
  readonly keys: number;
  /** Log size before and right after, in the store's unit (bytes; records for the memory store). */
  readonly sizeBefore: number;
  readonly sizeAfter: number;
  readonly durationMs: number;
}

/**
 * A store's own status, under `app.stats().store`. Field names follow the AOF fields of Redis's
 * `INFO persistence` in camelCase without the `aof_` prefix (`aof_current_size` → `currentSize`);
 * a store reports the fields that mean something for it, and may add its own.
 */
export interface StoreStats {
  /** `aof`, `sqlite-wal`, `memory`, … */
  readonly kind: string;
  readonly appendfsync?: FsyncPolicy;
  readonly rewriteInProgress?: boolean;
  readonly rewriteScheduled?: boolean;
  /** Duration of the last compaction in seconds, -1 if none. */
  readonly lastRewriteTimeSec?: number;
  /** Duration of the running compaction in seconds, -1 if none. */
  readonly currentRewriteTimeSec?: number;
  readonly lastBgrewriteStatus?: 'ok' | 'err';
  readonly rewrites?: number;
  readonly rewritesConsecutiveFailures?: number;
  readonly lastWriteStatus?: 'ok' | 'err';
  /** Size of the log now, in bytes. */
  readonly currentSize?: number;
  /** Size of the log right after the last compaction (or at open), in bytes. */
  readonly baseSize?: number;
  /** Bytes accepted but not yet written. */
  readonly bufferLength?: number;
  /** Fsyncs running in the background. */
  readonly pendingBioFsync?: number;
  /** Times a write waited for a slow background fsync (Redis's `aof_delayed_fsync`). */
  readonly delayedFsync?: number;
  /** Under `always`, the fdatasyncs of appended data run on the event loop (AOF `fsyncOnEventLoop` true or adaptive). */
  readonly eventLoopFsyncs?: number;
  /** Under `always`, the fdatasyncs of appended data run in the thread pool. */
  readonly poolFsyncs?: number;
  /** Under `always`, the times the adaptive placement moved fsyncs off the event loop after a slow one. */
  readonly fsyncFallBacks?: number;
  /**
   * What the last compaction kept for consumers (absent before the first one, or on a store
   * without consumers): the events it did not drop because a consumer had not handled them.
   */
  readonly retention?: RetentionStats;
}

/**
 * What holds compaction back (`StoreStats.retention`), as the last compaction found it, like
 * PostgreSQL's `pg_replication_slots`: the consumer with the lowest stored position holds the
 * events after it; those further behind than `maxConsumerLag` were marked stale instead.
 */
export interface RetentionStats {
  /** The seq the compaction covered (its snapshot's). */
  readonly seq: number;
  /**
   * The consumer whose position holds the kept events (the lowest stored position among the
   * consumers that are not stale), and that position; absent when nothing is kept.
   */
  readonly heldBy?: { readonly name: string; readonly position: number };
  /** The first kept seq (the holder's position + 1); absent when nothing is kept. */
  readonly keptFrom?: number;
  /** Events kept outside the replay path: `seq - heldBy.position`, 0 when nothing is kept. */
  readonly keptEvents: number;
  /** The consumers that are stale (marked by this compaction or an earlier one), by name. */
  readonly stale: readonly string[];
}

/**
 * A durable log of event groups: what every store implements, injected by the
 * `TOKENS.EventStore` token, checked by `runStoreConformance`. Four methods make a store; the
 * optional members are capabilities the App uses when they are there.
 *
 * The App calls `open` once, then `replay`, then `append` in sequence order, synchronously after
 * applying each command, and never calls `replay` while an `append` is pending. Invariant every
 * store keeps: once `append` has resolved, the group survives a crash as the store's durability
 * promises (its fsync policy), and a replay yields every resolved group, whole, in order. The
 * App's durable sequence number is the last one whose `append` resolved.
 */
export interface EventStore {
  /** `aof`, `sqlite-wal`, `memory`, … */
  readonly kind: string;
  /** Opens (or creates) the log and takes the lock. Called once before anything else. */
  open(context: StoreContext): Promise<StoreOpenInfo>;
  /**
   * Hands the log to `sink` (see {@link ReplaySink}), never holding the whole log in memory.
   * A malformed log rejects with `CorruptLogError` naming file and offset.
   */
  replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd>;
  /**
   * Logs one command's events; resolves when durable per the store's policy. Rejects with
   * `PersistenceError` when the log could not be written, or with `AppendConflictError` when
   * another writer appended first (a shared log): the group was decided on a stale state and is
   * not in the log. After a conflict the store rejects every later append with it too, until a
   * `replay({ after })` has read up to its new head.
   */
  append(group: EventGroup): Promise<void>;
  /** Writes and fsyncs everything pending, waits for a running compaction, releases the lock. */
  close(): Promise<void>;

  /**
   * Capability: other writers append to the same log (several processes on one database), so
   * `append` may reject with `AppendConflictError`. The App then keeps the undo information of
   * every command until it is durable, to roll them all back on a conflict.
   */
  readonly sharedLog?: boolean;
  /**
   * Capability (shared log): calls `changed` when other writers may have appended, a hint that
   * need not be exact (a NOTIFY, a poll), with the head it saw when it knows it; the App then
   * catches up with `replay({ after })`. Returns the function that stops watching. Called once,
   * after the start-up replay.
   */
  watch?(changed: (head?: number) => void): () => void;
  /** Capability (shared log): the last sequence number committed to the log by any writer, now. */
  head?(): Promise<number>;
  /**
   * Capability (shared log): present when another writer's commit can be read before it is
   * durable; resolves once everything this instance can read now is. The App applies what it
   * catches up with at once (its decisions need it) but reports it on `events$` and to its
   * consumers only after this, and `read` waits for it by itself.
   */
  readonly flushed?: () => Promise<void>;
  /**
   * Capability: rewrites the log as the smallest set of records that rebuilds the state
   * (BGREWRITEAOF). The snapshot's `projectionsVersion`, when it has one, is recorded with the
   * snapshot and handed back to `ReplaySink.snapshot`; a snapshot without one replays without one.
   */
  compact?(): Promise<CompactionResult>;
  /**
   * Capability: after a `PersistenceError`, makes the log writable again with nothing that was
   * not acknowledged left in it. Resolves when it is; rejects while the fault lasts. A store
   * without it is simply appended to again.
   */
  recover?(): Promise<void>;
  /** Capability: the store's own status. */
  stats?(): StoreStats;
  /** Capability: how far `replay` has read, for progress reports. */
  replayProgress?(): ReplayProgress;

  /**
   * Capability (consumers): the groups that hold events after `after`, whole and in order, at
   * most about `limit` events (always at least one whole group when there is one); the first
   * may begin at or before `after` when `after` falls inside a group. Unlike `replay`, it is
   * safe while appends are pending: it never cuts a torn tail and never blocks the writer. It
   * may return groups that are written but not yet durable; the caller bounds what it takes by
   * the durable seq it knows. Resolves with `[]` at the end of the log; rejects with
   * `LogCompactedError` when compaction dropped events after `after`.
   */
  read?(after: number, limit: number): Promise<readonly EventGroup[]>;
  /**
   * Capability (consumers): every consumer's stored record (position and parked events), kept
   * durably in the same store as the log, per the store's fsync policy.
   */
  loadConsumers?(): Promise<readonly ConsumerRecord[]>;
  /**
   * Capability (consumers): stores one consumer's record durably, replacing the one of its name,
   * with one exception that holds on every store: a stored stale mark stays. A save without
   * `stale` of a record that is stale is refused with `StaleConsumerError` and changes nothing
   * (a running consumer's checkpoint cannot undo a compaction's verdict; `app.resetConsumer`
   * deletes the record, then saves the new one).
   */
  saveConsumer?(record: ConsumerRecord): Promise<void>;
  /** Capability (consumers): forgets a consumer's record; resolves with false when there was none. */
  deleteConsumer?(name: string): Promise<boolean>;
  /**
   * Capability (consumers' reactions): `append` honours `group.consumer`. The group and the
   * consumer's position become durable as one unit (one transaction, one framed record), so a
   * crash leaves both or neither; the stored position never moves back (it becomes the greater of
   * the stored one and the group's), and the record's parked events are kept. Afterwards
   * `loadConsumers` reports at least that position. Without it, the App refuses a reaction with
   * `ConsumerError` and appends nothing.
   */
  readonly reactions?: boolean;
  /**
   * Capability (shared logs whose consumer names have one holder, `holdConsumer`): whether this
   * instance holds `name` now. The App refuses a reaction of a consumer that does not (before
   * applying it), and the store fences the position in the commit for a loss still on its way.
   */
  holdsConsumer?(name: string): boolean;
  /**
   * Capability (consumers on a log several processes share): takes the name's single-holder
   * lease, or resolves with null when another instance holds it (the caller waits as a standby
   * and asks again). While a store has it, a consumer runs only under a lease, and stores its
   * record through `lease.save`, which the store fences: it cannot succeed once the lease is lost.
   */
  holdConsumer?(name: string): Promise<ConsumerLease | null>;
}

/**
 * The right to run one consumer name on a shared log, held by one instance at a time (see
 * `EventStore.holdConsumer`). Lost when its holder's session with the store ends (closed,
 * killed, connection lost); another instance may then take it.
 */
export interface ConsumerLease {
  /** False once the lease is lost or released: its holder must stop handing events. */
  readonly held: boolean;
  /**
   * Stores the record, only while the lease is held: once it is lost, rejects (with `held`
   * false) and moves nothing, so a deposed holder cannot move the position of the next one.
   */
  save(record: ConsumerRecord): Promise<void>;
  /** Calls `listener` once when the lease is lost (not on `release`). */
  onLost(listener: (err: Error) => void): void;
  /** Gives the lease up (the next standby may take it); never rejects. */
  release(): Promise<void>;
}

/**
 * An event a consumer gave up on after its attempts ran out (a dead letter): the consumer went
 * on past it. `retry` set (by `appendonly consumers retry`) asks the consumer to hand it to its
 * handler again when it next opens.
 */
export interface ParkedEvent {
  readonly seq: number;
  readonly type: string;
  /** The handler's last error message. */
  readonly error: string;
  readonly attempts: number;
  /** When it was parked, in ms since the epoch. */
  readonly parkedAt: number;
  readonly retry?: boolean;
  /**
   * A copy of the event as the handler was handed it (absent in a record parked before copies
   * were kept): `retry` hands this copy, so a parked event stays retryable after compaction
   * dropped it from the log, and a dead letter never holds compaction back.
   */
  readonly event?: ParkedEventCopy;
}

/** The event a parked entry keeps (see {@link ParkedEvent.event}): what `AppliedEvent` carried. */
export interface ParkedEventCopy {
  readonly type: string;
  readonly data: JsonValue;
  /** The version the data is at (the handler got it upcast to its type's current version). */
  readonly version: number;
  readonly id: string;
  /** When its command was applied, ms since the epoch. */
  readonly time: number;
  readonly metadata?: EventMetadata;
}

/**
 * A compaction's verdict on a consumer too far behind (see `maxConsumerLag`): its events were no
 * longer kept for it, so it must be reset (`app.resetConsumer`) before it runs again.
 */
export interface StaleMark {
  /** When it was marked, ms since the epoch. */
  readonly markedAt: number;
  /** The seq the compaction that marked it covered. */
  readonly seq: number;
  /** How far behind it was then, in events. */
  readonly lag: number;
}

/** What a store keeps of a durable consumer (see `app.subscribe`). */
export interface ConsumerRecord {
  readonly name: string;
  /** The last seq the consumer has handled (or parked): it resumes after it. */
  readonly position: number;
  readonly parked: readonly ParkedEvent[];
  /** Set by a compaction when the consumer was more than `maxConsumerLag` events behind. */
  readonly stale?: StaleMark;
}
