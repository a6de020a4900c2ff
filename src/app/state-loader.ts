import type { DomainEvent, EventMetadata } from '../events/event';
import { legacyEventId } from '../events/event-id';
import { isKnownEventType } from '../events/event-registry';
import {
  currentEventVersion as currentEventVersionOf,
  hasVersionedTypes,
  isCurrentVersion,
  upcast,
} from '../events/upcasters';
import type { JsonValue } from '../events/json';
import { SET } from '../events/kv-events';
import type { KeyValueState } from '../state/key-value-state';
import { ReplayFailedError, UnknownEventTypeError } from '../errors';
import type { EventGroup, LogPosition, ReplaySink, SnapshotInfo } from '../store/event-store';
import type { Logger } from '../runtime/logger';
import type { Projector } from './projector';
import { snapshotMatches } from './projections-version';

/**
 * Called for each command the loader applied, when someone listens (catch-up, not start-up):
 * its events at their current version (upcast), one id and one version per event.
 */
export type AppliedGroup = (
  seq: number,
  time: number,
  events: readonly DomainEvent[],
  ids: readonly string[],
  versions: readonly number[],
  metadata: EventMetadata | undefined,
) => void;

/** How a loader treats the state and the snapshot it is handed. */
export interface LoaderOptions {
  /**
   * The app's projections version: a snapshot of another version aborts the replay at its first
   * record with {@link SnapshotVersionMismatch}, before any of it is loaded.
   */
  readonly projectionsVersion?: string;
}

/**
 * Thrown by the loader's `snapshot` (through the store's `replay`) when the snapshot was built by
 * other projections than the app's: internal to the App, which then rebuilds from the events.
 */
export class SnapshotVersionMismatch extends Error {
  constructor(
    /** The last sequence number the snapshot covers. */
    readonly seq: number,
    /** The version recorded with it. */
    readonly snapshotVersion: string,
  ) {
    super(
      `the snapshot up to seq ${seq} was built by projections version ${JSON.stringify(snapshotVersion)}`,
    );
  }
}

/**
 * Replay into the state: the sink the App hands its store, at start (the whole log) and when it
 * catches up after a conflict (`after` the durable seq). The same projector code runs here and
 * live, which is what makes replay give the live state. A projection that throws, or a type the
 * app does not define, aborts the replay with an error naming the record.
 */
export class StateLoader implements ReplaySink {
  groups = 0;
  entries = 0;
  lastSeq = 0;
  /** What the store said of the snapshot it handed over, once it did (null: no snapshot). */
  snapshotInfo: { readonly seq: number; readonly projectionsVersion?: string } | null = null;
  private readonly skipped = new Map<string, number>();
  private readonly projectionsVersion: string | undefined;

  constructor(
    private readonly kv: KeyValueState,
    private readonly projector: Projector,
    private readonly skipUnknownEventTypes: boolean,
    private readonly applied: AppliedGroup | null = null,
    /** A catch-up starts after this seq; each command is then applied under the undo journal, all or none. */
    after: number | null = null,
    options: LoaderOptions = {},
  ) {
    this.atomic = after !== null;
    if (after !== null) this.lastSeq = after;
    this.projectionsVersion = options.projectionsVersion;
  }

  /** Catch-up: a command that fails half way is undone, so the state ends at the last whole one. */
  private readonly atomic: boolean;

  snapshot(seq: number, info?: SnapshotInfo): void {
    const version = info?.projectionsVersion;
    // Checked before anything is loaded: the state stays as it was, and the App rebuilds it.
    if (!snapshotMatches(this.projectionsVersion, version)) throw new SnapshotVersionMismatch(seq, version!);
    this.snapshotInfo = version === undefined ? { seq } : { seq, projectionsVersion: version };
    this.lastSeq = seq;
  }

  entry(key: string, value: JsonValue): void {
    this.kv.load(key, value);
    this.entries++;
  }

  group(group: EventGroup, position?: LogPosition): void {
    if (!this.atomic) {
      this.applyGroup(group, position);
      return;
    }
    this.kv.begin();
    try {
      this.applyGroup(group, position);
    } catch (err) {
      this.kv.rollback();
      throw err;
    }
    this.kv.commit();
  }

  private applyGroup(group: EventGroup, position?: LogPosition): void {
    const { seq, time, events, ids, versions, metadata } = group;
    const projector = this.projector;
    // Upcast first, the whole group, so that a version this code does not know stops the replay
    // before any of the command is applied. What the store holds is never rewritten.
    // A group without versions is all version 1, which a type defined at version 2 or more upcasts too.
    const current =
      versions === undefined && !hasVersionedTypes() ? events : this.upcastGroup(group, position);
    for (let i = 0; i < current.length; i++) {
      const event = current[i];
      if (!isKnownEventType(event.type)) {
        if (!this.skipUnknownEventTypes)
          throw new UnknownEventTypeError(event.type, seq + i, where(position));
        this.skipped.set(event.type, (this.skipped.get(event.type) ?? 0) + 1);
        continue;
      }
      try {
        projector.apply(event, seq + i, time, ids?.[i], currentVersionOf(event.type), metadata);
      } catch (err) {
        // The code and the log disagree: say which record, so the operator can find it.
        throw new ReplayFailedError(event.type, seq + i, where(position), err);
      }
    }
    this.lastSeq = seq + events.length - 1;
    this.groups++;
    const applied = this.applied;
    if (applied !== null) {
      const n = current.length;
      const allIds: string[] = new Array(n);
      const allVersions: number[] = new Array(n);
      for (let i = 0; i < n; i++) {
        allIds[i] = ids?.[i] ?? legacyEventId(seq + i);
        // A skipped unknown type is reported as logged: this code has no version for it.
        allVersions[i] = isKnownEventType(current[i].type)
          ? currentVersionOf(current[i].type)
          : (versions?.[i] ?? 1);
      }
      applied(seq, time, current, allIds, allVersions, metadata);
    }
  }

  /** The group's events at their current versions; throws EventVersionError for one too new. */
  private upcastGroup(group: EventGroup, position?: LogPosition): readonly DomainEvent[] {
    const { seq, events, versions } = group;
    let out: DomainEvent[] | null = null;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      const v = versions?.[i] ?? 1;
      if (isCurrentVersion(e.type, v)) {
        if (out !== null) out.push(e);
        continue;
      }
      if (!isKnownEventType(e.type) && this.skipUnknownEventTypes) {
        if (out !== null) out.push(e);
        continue;
      }
      if (out === null) out = events.slice(0, i);
      out.push({ type: e.type, data: upcast(e.type, v, e.data, at(seq + i, position)) });
    }
    return out ?? events;
  }

  set(
    seq: number,
    time: number,
    key: string,
    value: JsonValue,
    position?: LogPosition,
    id?: string,
    metadata?: EventMetadata,
  ): void {
    if (this.atomic || this.applied !== null) {
      const group: EventGroup =
        metadata === undefined
          ? { seq, time, events: [SET(key, value)], ids: [id ?? legacyEventId(seq)] }
          : { seq, time, events: [SET(key, value)], ids: [id ?? legacyEventId(seq)], metadata };
      this.group(group, position);
      return;
    }
    try {
      this.projector.applySet(key, value, seq, time, id, metadata);
    } catch (err) {
      throw new ReplayFailedError('SET', seq, where(position), err);
    }
    this.lastSeq = seq;
    this.groups++;
  }

  /** Logs how many events of types this app does not define were skipped. */
  reportSkipped(logger: Logger): void {
    for (const [type, count] of this.skipped) {
      logger.warn(
        `skipped ${count} event(s) of type ${type}, which this app does not define (unknownEventTypes: 'skip')`,
      );
    }
  }
}

/** The version projections see an event of `type` at: its current one (upcast on replay). */
function currentVersionOf(type: string): number {
  return isCurrentVersion(type, 1) ? 1 : currentEventVersionOf(type);
}

/** `seq N, file at byte offset M`: a record's position for an EventVersionError. */
function at(seq: number, position: LogPosition | undefined): string {
  const w = where(position);
  return w === undefined ? `seq ${seq}` : `seq ${seq}, ${w}`;
}

/** `file at byte offset N`, when the store said where the record is. */
function where(position: LogPosition | undefined): string | undefined {
  if (position?.file === undefined) return undefined;
  return position.offset === undefined ? position.file : `${position.file} at byte offset ${position.offset}`;
}
