import { CorruptLogError, type DomainEvent, type EventMetadata, type JsonValue } from '../../src/index';
import { type ReplayRecord, withEnvelope } from '../../src/store/replay-batch';
import type { GroupFramer } from './group-framer';
import type { LogFile } from './reader';
import {
  decodeEnvelope,
  decodeEvent,
  decodePosition,
  type Envelope,
  isSetRecord,
  isUserEventRecord,
  type LoggedPosition,
  RecordFormatError,
  singleIdEnvelopeTime,
} from './record-codec';
import { bytesEqual, utf8 } from './resp';
import { type DataTarget, type MetadataTarget, parseMetadata, SetBatch, type SetTarget } from './set-batch';

/** A one-SET command read as a `set` record; {@link SetBatch} fills in key and value. */
type SingleSet = SetTarget & {
  kind: 'set';
  seq: number;
  time: number;
  file: string;
  offset: number;
  id?: string;
  metadata?: EventMetadata;
};
type Entry = SetTarget & { kind: 'entry' };

/*
 * The framer's groups → the records a replay hands to the App: a base file's SETs become its
 * snapshot's entries, an incr file's groups become groups of events, numbered from the file's
 * first sequence number; with `setRecords`, a command of one SET becomes a `set` record (no
 * event object for most of a log).
 *
 * SET values, user events' data and envelopes' metadata are decoded in batches ({@link SetBatch}:
 * one JSON.parse per ~16 KB). Invariant: a
 * record enters `batch` only once its group is complete, and `batch` is only handed out through
 * {@link take}, which fills in every value it holds; a bad value is reported before any later
 * error ({@link firstError}), so the offset named is the first damage in file order.
 */
export class RecordDecoder {
  /** Records of complete groups, to be handed out by {@link take}. */
  batch: ReplayRecord[] = [];
  /** The number the next event gets, and the last one given (or the base's). */
  nextSeq = 1;
  lastSeq = 0;

  private readonly sets = new SetBatch();
  private file = '';
  private isBase = false;
  /** The group being read: its events, its base entries, or its one SET. */
  private events: DomainEvent[] = [];
  private entries: Entry[] = [];
  private single: SingleSet | null = null;
  /** The `@env` record of the group being read, or null (a group logged before envelopes). */
  private envelope: Envelope | null = null;
  /**
   * The one id of the group's `@env` record when it names one id and no versions
   * (`singleIdEnvelopeTime`), or null; `envelope` is then null, and `envTime` is its time. Kept
   * as fields, not as an Envelope and an id array, because a log of commands of one event has one
   * such record per event, and those two objects died at once (a `set` record's `id` is the
   * string itself).
   */
  private envId: string | null = null;
  private envTime = 0;
  /**
   * The metadata of the group being read: -1 none (or no envelope); ≥ 0 the index of its piece in
   * the batch, counted from the group's first (see `SetBatch.groupPieces`); -2 parsed already,
   * into `metadata` (a value too long to batch).
   */
  private metadataPiece = -1;
  private metadata: EventMetadata | undefined = undefined;
  /**
   * The last user event type read, and its bytes: a log holds few types, so the next event of
   * the same type shares the string (no new one per event, and its hash is computed once for
   * every Map the replay looks it up in).
   */
  private lastType = '';
  private lastTypeBytes: Buffer = Buffer.alloc(0);
  /** The `@pos` record of the group being read, or null: it counts once its group is whole. */
  private position: LoggedPosition | null = null;
  /**
   * The consumers' positions logged by reactions in the whole groups read so far, by name: the
   * last one read (a consumer's positions only grow along the log, and so do its epochs).
   */
  readonly positions = new Map<string, LoggedPosition>();

  constructor(private readonly setRecords: boolean) {}

  /** SET bytes waiting for their parse. */
  get pendingBytes(): number {
    return this.sets.bytes;
  }

  /** A base yields its snapshot record first; an incr's events are numbered from its `seq`, if known. */
  beginFile(file: LogFile): void {
    this.file = file.name;
    this.isBase = file.kind === 'base';
    if (this.isBase) {
      const seq = file.seq ?? 0;
      const version = file.projectionsVersion;
      this.batch.push(
        version === undefined
          ? { kind: 'snapshot', seq }
          : { kind: 'snapshot', seq, projectionsVersion: version },
      );
      this.nextSeq = seq + 1;
      this.lastSeq = seq;
    } else if (file.seq !== undefined) {
      this.nextSeq = file.seq;
    }
  }

  /** The framer returned ENVELOPE: the group being read carries these ids, versions, time and metadata. */
  envelopeRecord(f: GroupFramer): void {
    if (this.isBase)
      throw new CorruptLogError(
        this.file,
        f.window.base + f.commandAt,
        'SET (a base file holds one SET per key)',
        'found @env',
      );
    const sc = f.sc;
    const buf = f.window.buf;
    this.sets.early = undefined;
    this.metadataPiece = -1;
    const time = singleIdEnvelopeTime(buf, sc);
    if (time >= 0) {
      this.envId = utf8(buf, sc.argStart[1], sc.argEnd[1]);
      this.envTime = time;
    } else {
      this.envelope = this.decodeRecord(f, envelopeWithoutMetadata);
    }
    if (sc.argc !== 5) return;
    const vs = sc.argStart[4];
    const ve = sc.argEnd[4];
    const at = f.window.base + vs;
    if (this.sets.addMetadata(buf, vs, ve, at)) {
      this.metadataPiece = this.sets.groupPieces - 1;
    } else {
      this.sets.flushAll(this.file); // what waits is reported first
      this.metadata = parseMetadata(utf8(buf, vs, ve), this.file, at);
      this.metadataPiece = -2;
    }
  }

  /**
   * Gives the group's record its metadata (now, or at the batch's parse; null: the group is
   * empty). Called before `SetBatch.endGroup`, while the group's pieces are counted from its first.
   */
  private attachMetadata(target: MetadataTarget | null): void {
    const piece = this.metadataPiece;
    if (piece === -1) return;
    this.metadataPiece = -1;
    if (piece === -2) {
      if (target !== null) target.metadata = this.metadata;
      this.metadata = undefined;
      return;
    }
    const early = this.sets.early;
    this.sets.early = undefined;
    this.sets.setMetadataTarget(piece, target, early);
  }

  /** The framer returned POSITION: the group being read is a reaction, with this consumer position. */
  positionRecord(f: GroupFramer): void {
    this.position = this.decodeRecord(f, decodePosition);
  }

  /** Decodes the record in the framer's scanner; a malformed one is corruption naming file and offset. */
  private decodeRecord<T>(f: GroupFramer, decode: (buf: Buffer, sc: GroupFramer['sc']) => T): T {
    try {
      return decode(f.window.buf, f.sc);
    } catch (err) {
      if (err instanceof RecordFormatError)
        throw new CorruptLogError(this.file, f.window.base + err.at, err.expected);
      throw err;
    }
  }

  /** The framer returned COMMAND: decode it into the group being read. */
  command(f: GroupFramer): void {
    const buf = f.window.buf;
    const sc = f.sc;
    if (isSetRecord(buf, sc)) {
      const a = sc.argStart;
      const e = sc.argEnd;
      const at = f.window.base + a[2];
      let target: SetTarget;
      if (this.isBase) {
        const entry: Entry = { kind: 'entry', key: '', value: null as JsonValue };
        this.entries.push(entry);
        target = entry;
      } else if (this.setRecords && !f.inMulti) {
        const env = this.envelope;
        const envId = this.envId;
        const time =
          envId !== null ? this.envTime : env !== null ? env.time : f.lastTs < 0 ? 0 : f.lastTs * 1000;
        const single: SingleSet = {
          kind: 'set',
          seq: this.nextSeq,
          time,
          key: '',
          value: null,
          file: this.file,
          offset: f.groupOffset,
        };
        if (envId !== null) single.id = envId;
        else if (env !== null && env.ids !== undefined) single.id = env.ids[0];
        this.single = single;
        target = single;
      } else {
        target = { key: '', value: null };
        this.events.push({ type: 'SET', data: target } as unknown as DomainEvent);
      }
      this.sets.add(buf, a[1], e[1], a[2], e[2], at, target, this.file);
      return;
    }
    if (isUserEventRecord(buf, sc)) {
      const event: DataTarget = { type: this.typeOf(buf, sc.argStart[0], sc.argEnd[0]), data: null };
      this.events.push(event as DomainEvent);
      const vs = sc.argStart[1];
      this.sets.addData(buf, vs, sc.argEnd[1], f.window.base + vs, event, this.file);
      return;
    }
    try {
      this.events.push(decodeEvent(buf, sc));
    } catch (err) {
      if (err instanceof RecordFormatError)
        throw new CorruptLogError(this.file, f.window.base + err.at, err.expected);
      throw err;
    }
  }

  /** The event type in `buf[s..e)`, the last one's string when the bytes are the same. */
  private typeOf(buf: Buffer, s: number, e: number): string {
    if (bytesEqual(buf, s, e, this.lastTypeBytes)) return this.lastType;
    const type = utf8(buf, s, e);
    this.lastType = type;
    this.lastTypeBytes = Buffer.from(buf.subarray(s, e));
    return type;
  }

  /** The framer returned GROUP: the group's records join the batch. */
  endGroup(f: GroupFramer): void {
    const single = this.single;
    const env = this.envelope;
    this.envelope = null;
    const envId = this.envId;
    this.envId = null;
    if (this.position !== null) {
      this.positions.set(this.position.name, this.position);
      this.position = null;
    }
    if (env !== null) this.checkEnvelope(env, single !== null ? 1 : this.events.length, f);
    else if (envId !== null && single === null && this.events.length !== 1)
      throw this.badEnvelope('id', this.events.length, 1, f);
    if (single !== null) {
      this.attachMetadata(single);
      this.sets.endGroup(f.checked);
      this.batch.push(single);
      this.single = null;
      this.lastSeq = this.nextSeq++;
      return;
    }
    const n = this.events.length;
    if (n === 0 && this.entries.length === 0) {
      // MULTI … EXEC with nothing inside: its metadata, if any, is parsed (and checked) for no one.
      this.attachMetadata(null);
      this.sets.endGroup(f.checked);
      return;
    }
    if (this.isBase) {
      this.sets.endGroup(f.checked);
      if (n > 0) {
        const found = `found ${this.events[0].type}`;
        throw new CorruptLogError(this.file, f.start, 'SET (a base file holds one SET per key)', found);
      }
      for (let i = 0; i < this.entries.length; i++) this.batch.push(this.entries[i]);
      this.entries = [];
      return;
    }
    const group = {
      kind: 'group' as const,
      seq: this.nextSeq,
      time: envId !== null ? this.envTime : env !== null ? env.time : f.lastTs < 0 ? 0 : f.lastTs * 1000,
      events: this.events,
      file: this.file,
      offset: f.start,
    };
    const record =
      envId !== null
        ? withEnvelope(group, [envId], undefined, undefined)
        : env === null
          ? group
          : withEnvelope(group, env.ids, env.versions, undefined);
    this.attachMetadata(record as MetadataTarget);
    this.sets.endGroup(f.checked);
    this.batch.push(record);
    this.nextSeq += n;
    this.lastSeq = this.nextSeq - 1;
    this.events = [];
  }

  /**
   * The group being read is torn and will be cut. Its whole records are decoded first: a bad
   * value there is corruption, not a torn write, and is reported (thrown) here.
   */
  dropGroup(): void {
    this.envelope = null;
    this.envId = null;
    this.metadataPiece = -1;
    this.metadata = undefined;
    this.position = null;
    this.sets.flushAll(this.file);
    this.events = [];
    this.entries = [];
    this.single = null;
  }

  /** An envelope names one id and one version per event of its group, or none. */
  private checkEnvelope(env: Envelope, events: number, f: GroupFramer): void {
    if (env.ids !== undefined && env.ids.length !== events)
      throw this.badEnvelope('id', events, env.ids.length, f);
    if (env.versions !== undefined && env.versions.length !== events)
      throw this.badEnvelope('version', events, env.versions.length, f);
  }

  /** The group's envelope has `n` of `what` for its `events` events. */
  private badEnvelope(what: string, events: number, n: number, f: GroupFramer): CorruptLogError {
    return new CorruptLogError(
      this.file,
      f.start,
      `an envelope with one ${what} per event (${events})`,
      `it has ${n}`,
    );
  }

  /** The batch, every SET in it decoded; a new one starts. */
  take(): ReplayRecord[] {
    this.sets.flushGroups(this.file);
    const out = this.batch;
    this.batch = [];
    return out;
  }

  /** Decodes what is pending; at the end of a file, where every group is complete or dropped. */
  flush(): void {
    this.sets.flushGroups(this.file);
  }

  /** `err` stopped the read: a bad value earlier in the file (this group's too) is the one to report. */
  firstError(err: unknown): unknown {
    if (!(err instanceof CorruptLogError)) return err;
    try {
      this.sets.flushAll(this.file);
    } catch (earlier) {
      return earlier;
    }
    return err;
  }
}

/** The `@env` record but its metadata, which the decoder batches. */
function envelopeWithoutMetadata(buf: Buffer, sc: GroupFramer['sc']): Envelope {
  return decodeEnvelope(buf, sc, false);
}
