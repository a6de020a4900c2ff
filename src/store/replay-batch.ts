import type { EventMetadata } from '../events/event';
import type { JsonValue } from '../events/json';
import { SET } from '../events/kv-events';
import { LogCompactedError } from '../errors';
import type { EventGroup, ReplayEnd, ReplayOptions, ReplaySink } from './event-store';

/*
 * The records a store's reader produces in batches, before they reach a ReplaySink: internal
 * to the stores and their tools (not in the public API). A reader yields arrays of them, so that
 * an async file or database read costs one promise per batch, not per record.
 */

/** The log holds a snapshot that covers every event up to `seq`; its entries follow. */
export interface ReplaySnapshotStart {
  readonly kind: 'snapshot';
  readonly seq: number;
  /** The projections version the store recorded with the snapshot; absent: unversioned. */
  readonly projectionsVersion?: string;
}

/** One key of the snapshot. */
export interface ReplayEntry {
  readonly kind: 'entry';
  readonly key: string;
  readonly value: JsonValue;
}

/** One command's events, with where they are (the record itself is the `LogPosition`). */
export interface ReplayGroup extends EventGroup {
  readonly kind: 'group';
  readonly file?: string;
  readonly offset?: number;
}

/** A command of exactly one SET: see `ReplaySink.set`. */
export interface ReplaySet {
  readonly kind: 'set';
  readonly seq: number;
  readonly time: number;
  readonly key: string;
  readonly value: JsonValue;
  readonly file?: string;
  readonly offset?: number;
  /** Its envelope's: absent for a SET logged before envelopes. */
  readonly id?: string;
  readonly metadata?: EventMetadata;
}

/** One record of a reader's batch. */
export type ReplayRecord = ReplaySnapshotStart | ReplayEntry | ReplayGroup | ReplaySet;

/** The one-event group that a {@link ReplaySet} stands for; a group is returned as it is. */
export function toReplayGroup(record: ReplayGroup | ReplaySet): ReplayGroup {
  if (record.kind === 'group') return record;
  const { seq, time, key, value, file, offset, id, metadata } = record;
  const group: ReplayGroup = { kind: 'group', seq, time, events: [SET(key, value)], file, offset };
  return withEnvelope(group, id === undefined ? undefined : [id], undefined, metadata);
}

/**
 * `group` with the envelope fields that are defined, and no key for those that are not: a
 * group read back compares equal (`toEqual`) to the one appended, and a legacy one has none.
 */
export function withEnvelope<G extends EventGroup>(
  group: G,
  ids: readonly string[] | undefined,
  versions: readonly number[] | undefined,
  metadata: EventMetadata | undefined,
): G {
  const g = group as { -readonly [K in keyof EventGroup]: EventGroup[K] };
  if (ids !== undefined) g.ids = ids;
  if (versions !== undefined) g.versions = versions;
  if (metadata !== undefined) g.metadata = metadata;
  return group;
}

/**
 * Hands a reader's batches to a sink, as every store's `replay` does: with `after`, skips the
 * snapshot and every command up to it, and refuses (LogCompactedError) when a snapshot covers
 * events after it, which only survive as state. `lastSeq` is the last sequence number seen.
 */
export class ReplayFeed {
  lastSeq = 0;
  private readonly after: number;

  constructor(
    private readonly sink: ReplaySink,
    options: ReplayOptions | undefined,
    /** Names the log in errors: a folder, a file. */
    private readonly where: string,
  ) {
    this.after = options?.after ?? -1;
  }

  /** The replay's result. */
  get end(): ReplayEnd {
    return { lastSeq: this.lastSeq };
  }

  push(batch: readonly ReplayRecord[]): void {
    const sink = this.sink;
    const after = this.after;
    let lastSeq = this.lastSeq;
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i];
      switch (r.kind) {
        case 'set':
          if (r.seq > after) sink.set(r.seq, r.time, r.key, r.value, r, r.id, r.metadata);
          lastSeq = r.seq;
          break;
        case 'group':
          if (r.seq > after) sink.group(r, r);
          lastSeq = r.seq + r.events.length - 1;
          break;
        case 'entry':
          if (after < 0) sink.entry(r.key, r.value);
          break;
        case 'snapshot':
          if (after >= 0 && r.seq > after) throw new LogCompactedError(after, r.seq + 1, this.where);
          if (after < 0)
            sink.snapshot(
              r.seq,
              r.projectionsVersion === undefined ? undefined : { projectionsVersion: r.projectionsVersion },
            );
          lastSeq = r.seq;
          break;
      }
    }
    this.lastSeq = lastSeq;
  }
}
