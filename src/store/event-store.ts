import type { DomainEvent } from '../events/event';
import type { JsonValue } from '../events/json';
import { SET } from '../events/kv-events';
import type { Clock } from './clock';
import type { FsyncPolicy } from './fsync-policy';
import type { Logger } from './logger';
import type { SnapshotSource } from './snapshot-source';

/** The events of one command: appended and replayed all or none. */
export interface EventGroup {
  /** The global sequence number of the first event; the others follow one by one. */
  readonly seq: number;
  /** When the command was applied, in ms since the epoch (0 when the store did not record it). */
  readonly time: number;
  /** At least one event. */
  readonly events: readonly DomainEvent[];
}

/** Replay: the log holds a snapshot that covers every event up to `seq`; its entries follow. */
export interface ReplaySnapshotStart {
  readonly kind: 'snapshot';
  readonly seq: number;
}

/** Replay: one key of the snapshot. */
export interface ReplayEntry {
  readonly kind: 'entry';
  readonly key: string;
  readonly value: JsonValue;
}

/** Replay: one command's events, in log order after the snapshot. */
export interface ReplayGroup extends EventGroup {
  readonly kind: 'group';
  /** Where the group is, for error messages: a file name (AOF), a table (SQLite)… Optional. */
  readonly file?: string;
  /** The byte offset of the group in `file`, when the store knows it. */
  readonly offset?: number;
}

/**
 * Replay: a command that logged exactly one built-in SET — what most of a log is made of. A store
 * may yield it in place of the equivalent one-event {@link ReplayGroup}, to spare the event
 * objects; the App applies both alike (a projection of SET still gets a SET event).
 */
export interface ReplaySet {
  readonly kind: 'set';
  /** The sequence number of the SET. */
  readonly seq: number;
  /** As {@link EventGroup.time}: ms since the epoch, 0 when the store did not record it. */
  readonly time: number;
  /** The key the SET sets. */
  readonly key: string;
  /** The JSON value it sets. */
  readonly value: JsonValue;
  /** As {@link ReplayGroup.file}. */
  readonly file?: string;
  /** As {@link ReplayGroup.offset}. */
  readonly offset?: number;
}

/** The one-event group that a {@link ReplaySet} stands for; a group is returned as it is. */
export function toReplayGroup(record: ReplayGroup | ReplaySet): ReplayGroup {
  if (record.kind === 'group') return record;
  const { seq, time, key, value, file, offset } = record;
  return { kind: 'group', seq, time, events: [SET(key, value)], file, offset };
}

/** What `replay()` yields: an optional snapshot (start, then entries), then event groups (or single SETs). */
export type ReplayRecord = ReplaySnapshotStart | ReplayEntry | ReplayGroup | ReplaySet;

/** What a store found when it opened. */
export interface StoreOpenInfo {
  /** `aof`, `sqlite-wal`, `memory`, … */
  readonly kind: string;
  /** The folder or file the store uses. */
  readonly location: string;
  /** True when there was no log yet. */
  readonly created: boolean;
  /** Bytes of log found, for progress reports during replay. */
  readonly sizeBytes: number;
}

/** What the app gives its store when it opens it. */
export interface StoreContext {
  /** Where the store takes the snapshot for a compaction, at the moment it switches logs. */
  readonly snapshots: SnapshotSource;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** What one compaction did. */
export interface CompactionResult {
  /** The last sequence number the new base covers. */
  readonly seq: number;
  /** Keys written to the new base. */
  readonly keys: number;
  /** Log size before and right after, in bytes. */
  readonly sizeBefore: number;
  readonly sizeAfter: number;
  readonly durationMs: number;
}

/**
 * Persistence status, named after the AOF fields of Redis's `INFO persistence` in camelCase
 * without the `aof_` prefix (`aof_current_size` → `currentSize`). Stores add their own fields.
 */
export interface StoreStats {
  readonly kind: string;
  readonly appendfsync: FsyncPolicy;
  readonly rewriteInProgress: boolean;
  readonly rewriteScheduled: boolean;
  /** Duration of the last compaction in seconds, -1 if none. */
  readonly lastRewriteTimeSec: number;
  /** Duration of the running compaction in seconds, -1 if none. */
  readonly currentRewriteTimeSec: number;
  readonly lastBgrewriteStatus: 'ok' | 'err';
  readonly rewrites: number;
  readonly rewritesConsecutiveFailures: number;
  readonly lastWriteStatus: 'ok' | 'err';
  /** Size of the log now, in bytes. */
  readonly currentSize: number;
  /** Size of the log right after the last compaction (or at open), in bytes. */
  readonly baseSize: number;
  /** Bytes accepted but not yet written. */
  readonly bufferLength: number;
  /** Fsyncs running in the background. */
  readonly pendingBioFsync: number;
  /** Times a write waited for a slow background fsync (Redis's `aof_delayed_fsync`). */
  readonly delayedFsync: number;
  /** The last sequence number appended. */
  readonly lastSeq: number;
}

/**
 * A durable log of event groups: the one interface every store implements, injected by the
 * `TOKENS.EventStore` token, checked by `runStoreConformance`.
 *
 * The app calls `append` in sequence order, synchronously after applying each command, and never
 * calls `replay` and `append` at once. Invariant every store keeps: once `append` has resolved,
 * the group survives a crash as the store's fsync policy promises, and a replay returns every
 * resolved group, whole, in order.
 */
export interface EventStore {
  /** `aof`, `sqlite-wal`, `memory`, … */
  readonly kind: string;
  /** Opens (or creates) the log and takes the lock. Called once before anything else. */
  open(context: StoreContext): Promise<StoreOpenInfo>;
  /**
   * Streams the log: snapshot first, then groups (a command of one SET may come as a
   * {@link ReplaySet} instead of its group). Yields batches, so that replay costs no
   * promise per record, and never holds the whole log in memory. A malformed log throws
   * `CorruptLogError` naming file and offset.
   */
  replay(): AsyncIterable<readonly ReplayRecord[]>;
  /** Logs one command's events; resolves when durable per the policy, rejects with `PersistenceError`. */
  append(group: EventGroup): Promise<void>;
  /** Rewrites the log as the smallest set of records that rebuilds the state (Redis's BGREWRITEAOF). */
  compact(): Promise<CompactionResult>;
  /**
   * After a `PersistenceError`: tries to make the log writable again, with nothing that was not
   * acknowledged left in it. Resolves when it is; rejects while the fault lasts.
   */
  recover(): Promise<void>;
  /** Bytes read so far and in all during `replay`, for progress reports. */
  replayProgress(): { readonly bytesRead: number; readonly bytesTotal: number };
  stats(): StoreStats;
  /** Writes and fsyncs everything pending, waits for a running compaction, releases the lock. */
  close(): Promise<void>;
}
