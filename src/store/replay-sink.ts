import type { JsonValue } from '../events/json';
import { SET } from '../events/kv-events';
import type { EventGroup, LogPosition, ReplaySink, SnapshotInfo } from './event-store';
import { withEnvelope } from './replay-batch';

/** The parts of a {@link ReplaySink} a reader may leave out. */
export interface PartialReplaySink {
  group(group: EventGroup, position?: LogPosition): void;
  snapshot?(seq: number, info?: SnapshotInfo): void;
  entry?(key: string, value: JsonValue): void;
}

/**
 * A whole sink from a reader that wants commands as groups: `set` becomes the one-event group
 * it stands for; a missing `snapshot` or `entry` ignores those records.
 */
export function replaySink(partial: PartialReplaySink): ReplaySink {
  return {
    snapshot: (seq, info) => partial.snapshot?.(seq, info),
    entry: (key, value) => partial.entry?.(key, value),
    group: (group, position) => partial.group(group, position),
    set: (seq, time, key, value, position, id, metadata) =>
      partial.group(
        withEnvelope(
          { seq, time, events: [SET(key, value)] },
          id === undefined ? undefined : [id],
          undefined,
          metadata,
        ),
        position,
      ),
  };
}

/** What a replay handed over, in order: for tests and tools that look at a log as a whole. */
export type ReplayedRecord =
  | {
      readonly kind: 'snapshot';
      readonly seq: number;
      /** Present only for a versioned snapshot. */
      readonly projectionsVersion?: string;
    }
  | { readonly kind: 'entry'; readonly key: string; readonly value: JsonValue }
  | {
      readonly kind: 'group';
      readonly seq: number;
      readonly time: number;
      readonly events: EventGroup['events'];
      /** The envelope, when the group has one (see {@link EventGroup}). */
      readonly ids?: EventGroup['ids'];
      readonly versions?: EventGroup['versions'];
      readonly metadata?: EventGroup['metadata'];
    };

/** A sink that records everything as {@link ReplayedRecord}s (a `set` as its one-event group). */
export function recordingSink(out: ReplayedRecord[]): ReplaySink {
  return replaySink({
    snapshot: (seq, info) =>
      out.push(
        info?.projectionsVersion === undefined
          ? { kind: 'snapshot', seq }
          : { kind: 'snapshot', seq, projectionsVersion: info.projectionsVersion },
      ),
    entry: (key, value) => out.push({ kind: 'entry', key, value }),
    group: ({ seq, time, events, ids, versions, metadata }) =>
      out.push(withEnvelope({ kind: 'group' as const, seq, time, events }, ids, versions, metadata)),
  });
}
