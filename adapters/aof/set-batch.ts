import { CorruptLogError, type EventMetadata, type JsonValue } from '../../src/index';
import { smallInteger } from './record-codec';
import { utf8 } from './resp';

/** Where a decoded SET goes: the data of a SET event, or an `entry` record of a base file. */
export interface SetTarget {
  key: string;
  value: JsonValue;
}

/** Where a user event's data goes: the event itself (its `type` names it in errors). */
export interface DataTarget {
  readonly type: string;
  data: JsonValue;
}

/** Where a group's metadata goes: the group record (or one-SET record) it belongs to. */
export interface MetadataTarget {
  metadata?: EventMetadata;
}

/** What a piece of the batch is, and so which field of its target it fills. */
const SET_PIECE = 0;
const DATA_PIECE = 1;
const METADATA_PIECE = 2;
type PieceKind = typeof SET_PIECE | typeof DATA_PIECE | typeof METADATA_PIECE;
/** The target of a metadata piece whose group's record is not made yet. */
const PENDING: MetadataTarget = {};
/** null: a piece parsed (and so checked) for no one, the metadata of an empty group. */
type Target = SetTarget | DataTarget | MetadataTarget | null;

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c;
const ZERO = 0x30;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const HEX = Buffer.from('0123456789abcdef', 'latin1');
/** Values shorter than this are copied byte by byte: cheaper than a call into Buffer#copy. */
const COPY_LOOP_MAX = 64;
/** Values this long or longer are parsed on their own: a copy would double their memory for nothing. */
const DIRECT_FROM = 16 * 1024;
/** The scratch text keeps at most this much room once flushed (a huge MULTI may have grown it). */
const KEEP_SCRATCH = 1024 * 1024;

/**
 * Decodes the keys and values of many SET records, the data of many user events and the metadata
 * of many envelopes with one `JSON.parse`.
 *
 * Why: record by record, two UTF-8 slices and a `JSON.parse` cost more than the reference loop's
 * whole line. Copied into one JSON text, `["key",value,"key",value,…]` (each key escaped as a JSON
 * string, each value as the bytes that were written), one parse decodes the batch; and V8
 * internalizes the short strings it parses, so a key seen before costs no new string and the
 * state's Map compares it by pointer. An event's data or an envelope's metadata is a piece
 * `0,value` (the `0` holds the place of a key): the same text, one parse for a whole batch of
 * domain events and their metadata, where record by record they cost two parses each.
 *
 * Invariant: the batch gives back exactly its pieces when every value is one JSON text. That holds
 * for a value whose group passed its `#CRC` check: its bytes are what `JSON.stringify` wrote.
 * When a piece is unverified (its group had no `#CRC` line: a hand-edited file), or the parse does
 * not give 2 × n elements with a string at every key, each piece is parsed on its own, so that a
 * bad value is reported at its own byte offset, as a record-by-record reader would. The CRC is an
 * integrity check against damage, not a defence against a forged file: invalid values with
 * recomputed CRCs can be crafted to parse together as other valid JSON, which then loads (as any
 * valid value written by hand would).
 */
export class SetBatch {
  private scratch = Buffer.allocUnsafe(64 * 1024);
  private length = 0;
  private count = 0;
  private unverified = false;
  /** The first piece of the group being read: those before it belong to complete groups. */
  private groupFirst = 0;
  private readonly targets: Target[] = [];
  private readonly kinds: PieceKind[] = [];
  /** Per piece: where it starts in `scratch` (at its separator), where its value starts, the value's file offset. */
  private readonly pieceStarts: number[] = [];
  private readonly valueStarts: number[] = [];
  private readonly fileOffsets: number[] = [];

  /** Bytes waiting to be parsed. */
  get bytes(): number {
    return this.length;
  }

  /**
   * Adds the SET whose key is `buf[ks..ke)` and JSON value `buf[vs..ve)` (at `fileOffset` in its
   * file); fills `target` at the next flush, or at once for an integer value.
   */
  add(
    buf: Buffer,
    ks: number,
    ke: number,
    vs: number,
    ve: number,
    fileOffset: number,
    target: SetTarget,
    file: string,
  ): void {
    // An integer value needs no parser at all, and then a slice of the key is cheaper than a parse.
    const int = smallInteger(buf, vs, ve);
    if (int !== undefined) {
      target.key = utf8(buf, ks, ke);
      target.value = int;
      return;
    }
    if (ve - vs >= DIRECT_FROM) {
      // Parsed here and now; what waits is parsed first (one by one: its group may be unchecked
      // yet), so that a bad value earlier in the file is still the one reported.
      this.flushAll(file);
      target.key = utf8(buf, ks, ke);
      target.value = parseValue(utf8(buf, vs, ve), file, fileOffset);
      return;
    }
    const need = 4 + (ke - ks) * 6 + (ve - vs) + 1;
    if (this.length + need > this.scratch.length) this.grow(need);
    const out = this.scratch;
    const i = this.count++;
    let p = this.length;
    this.pieceStarts[i] = p;
    this.targets[i] = target;
    this.kinds[i] = SET_PIECE;
    this.fileOffsets[i] = fileOffset;
    out[p++] = i === 0 ? OPEN : COMMA;
    out[p++] = QUOTE;
    for (let j = ks; j < ke; j++) {
      const c = buf[j];
      if (c === QUOTE || c === BACKSLASH) {
        out[p++] = BACKSLASH;
        out[p++] = c;
      } else if (c < 0x20) {
        out[p++] = BACKSLASH;
        out[p++] = 0x75; // u
        out[p++] = 0x30;
        out[p++] = 0x30;
        out[p++] = HEX[c >> 4];
        out[p++] = HEX[c & 15];
      } else {
        out[p++] = c;
      }
    }
    out[p++] = QUOTE;
    out[p++] = COMMA;
    this.valueStarts[i] = p;
    if (ve - vs < COPY_LOOP_MAX) for (let j = vs; j < ve; j++) out[p++] = buf[j];
    else p += buf.copy(out, p, vs, ve);
    this.length = p;
  }

  /**
   * Adds a user event's JSON data `buf[vs..ve)` (at `fileOffset` in its file), filled into
   * `target.data` at the next flush, or at once for an integer.
   */
  addData(buf: Buffer, vs: number, ve: number, fileOffset: number, target: DataTarget, file: string): void {
    const int = smallInteger(buf, vs, ve);
    if (int !== undefined) {
      target.data = int;
      return;
    }
    if (ve - vs >= DIRECT_FROM) {
      this.flushAll(file); // as for a SET: what waits is reported first
      target.data = parseData(utf8(buf, vs, ve), target.type, file, fileOffset);
      return;
    }
    this.addPiece(buf, vs, ve, fileOffset, target, DATA_PIECE);
  }

  /**
   * Adds an envelope's JSON metadata `buf[vs..ve)`, its target given later by
   * {@link setMetadataTarget} (the group's record is made once the group is complete). Returns
   * false for a value too long to batch: the caller parses it (after {@link flushAll}).
   */
  addMetadata(buf: Buffer, vs: number, ve: number, fileOffset: number): boolean {
    if (ve - vs >= DIRECT_FROM) return false;
    this.addPiece(buf, vs, ve, fileOffset, PENDING, METADATA_PIECE);
    return true;
  }

  /**
   * Pieces of the group being read so far. A piece's index counted from the group's first stays
   * the same across {@link flushGroups}, which only takes complete groups.
   */
  get groupPieces(): number {
    return this.count - this.groupFirst;
  }

  /**
   * Gives the metadata piece `index` (counted from the group's first, see {@link groupPieces})
   * its target (null: the group turns out empty, the value goes nowhere). When a flush of the
   * whole batch already parsed it, into {@link early}, the value is put there now.
   */
  setMetadataTarget(index: number, target: MetadataTarget | null, parsed: EventMetadata | undefined): void {
    if (parsed !== undefined) {
      if (target !== null) target.metadata = parsed;
    } else {
      this.targets[this.groupFirst + index] = target;
    }
  }

  private addPiece(
    buf: Buffer,
    vs: number,
    ve: number,
    fileOffset: number,
    target: Target,
    kind: PieceKind,
  ): void {
    const need = 3 + (ve - vs) + 1;
    if (this.length + need > this.scratch.length) this.grow(need);
    const out = this.scratch;
    const i = this.count++;
    let p = this.length;
    this.pieceStarts[i] = p;
    this.targets[i] = target;
    this.kinds[i] = kind;
    this.fileOffsets[i] = fileOffset;
    out[p++] = i === 0 ? OPEN : COMMA;
    out[p++] = ZERO;
    out[p++] = COMMA;
    this.valueStarts[i] = p;
    if (ve - vs < COPY_LOOP_MAX) for (let j = vs; j < ve; j++) out[p++] = buf[j];
    else p += buf.copy(out, p, vs, ve);
    this.length = p;
  }

  /**
   * The group being read is complete; `checked`: its `#CRC` line matched. A group without one
   * (hand-edited) makes the next flush parse its pieces one by one.
   */
  endGroup(checked: boolean): void {
    if (!checked && this.count > this.groupFirst) this.unverified = true;
    this.groupFirst = this.count;
  }

  /**
   * Parses the pieces of the complete groups into their targets, keeping those of the group still
   * being read. Throws {@link CorruptLogError} naming `file` and the byte offset of the first value
   * that is not JSON.
   */
  flushGroups(file: string): void {
    this.flush(this.groupFirst, file);
  }

  /**
   * Parses every piece one by one, those of a group not checked yet too. For the paths where
   * something is wrong further on: the first bad value in file order must be the one reported.
   */
  flushAll(file: string): void {
    this.unverified = true;
    this.flush(this.count, file);
  }

  private flush(upTo: number, file: string): void {
    const n = Math.min(upTo, this.count);
    if (n === 0) return;
    const end = n < this.count ? this.pieceStarts[n] : this.length;
    if (this.unverified || !this.parseAll(n, end)) this.parseEach(n, end, file);
    this.unverified = false;
    // Keep the rest at the front: its offsets move by the bytes just parsed.
    const rest = this.count - n;
    const shift = end;
    this.scratch.copyWithin(0, end, this.length);
    for (let i = 0; i < rest; i++) {
      this.pieceStarts[i] = this.pieceStarts[n + i] - shift;
      this.valueStarts[i] = this.valueStarts[n + i] - shift;
      this.fileOffsets[i] = this.fileOffsets[n + i];
      this.targets[i] = this.targets[n + i];
      this.kinds[i] = this.kinds[n + i];
    }
    for (let i = rest; i < this.count; i++) this.targets[i] = null;
    this.length -= shift;
    this.count = rest;
    this.groupFirst = Math.max(0, this.groupFirst - n);
    if (rest > 0) this.scratch[0] = OPEN; // the first piece opens the next text
    if (this.scratch.length > KEEP_SCRATCH && this.length < KEEP_SCRATCH / 2) {
      const smaller = Buffer.allocUnsafe(KEEP_SCRATCH);
      this.scratch.copy(smaller, 0, 0, this.length);
      this.scratch = smaller;
    }
  }

  /** One parse for the whole batch; false when it does not give back exactly the pieces. */
  private parseAll(n: number, end: number): boolean {
    const out = this.scratch;
    const separator = out[end];
    out[end] = CLOSE; // `end` is inside the buffer: grow() keeps one spare byte
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8(out, 0, end + 1));
    } catch {
      return false;
    } finally {
      out[end] = separator;
    }
    if (!Array.isArray(parsed) || parsed.length !== 2 * n) return false;
    const targets = this.targets;
    const kinds = this.kinds;
    // Checked whole before any target is filled: a false return leaves parseEach a clean slate.
    for (let i = 0; i < n; i++) {
      const kind = kinds[i];
      if (kind === SET_PIECE) {
        if (typeof parsed[2 * i] !== 'string') return false;
      } else if (parsed[2 * i] !== 0 || (kind === METADATA_PIECE && !isJsonObject(parsed[2 * i + 1]))) {
        return false;
      }
    }
    for (let i = 0; i < n; i++) {
      const target = targets[i];
      const kind = kinds[i];
      if (kind === SET_PIECE) {
        (target as SetTarget).key = parsed[2 * i] as string;
        (target as SetTarget).value = parsed[2 * i + 1] as JsonValue;
      } else if (kind === DATA_PIECE) {
        (target as DataTarget).data = parsed[2 * i + 1] as JsonValue;
      } else if (target === PENDING) {
        this.early = parsed[2 * i + 1] as EventMetadata;
      } else if (target !== null) {
        (target as MetadataTarget).metadata = parsed[2 * i + 1] as EventMetadata;
      }
    }
    return true;
  }

  /** Each piece on its own: slower, and it finds the bad value. */
  private parseEach(n: number, end: number, file: string): void {
    const out = this.scratch;
    for (let i = 0; i < n; i++) {
      const keyStart = this.pieceStarts[i] + 1;
      const valueStart = this.valueStarts[i];
      const valueEnd = i + 1 < n ? this.pieceStarts[i + 1] : end;
      const target = this.targets[i];
      const kind = this.kinds[i];
      const text = utf8(out, valueStart, valueEnd);
      if (kind === SET_PIECE) {
        (target as SetTarget).key = JSON.parse(utf8(out, keyStart, valueStart - 1)) as string;
        (target as SetTarget).value = parseValue(text, file, this.fileOffsets[i]);
      } else if (kind === DATA_PIECE) {
        const t = target as DataTarget;
        t.data = parseData(text, t.type, file, this.fileOffsets[i]);
      } else {
        const metadata = parseMetadata(text, file, this.fileOffsets[i]);
        if (target === PENDING) this.early = metadata;
        else if (target !== null) (target as MetadataTarget).metadata = metadata;
      }
    }
  }

  /**
   * The metadata of the group being read when a flush of the whole batch ({@link flushAll})
   * parsed it before its target was known; taken (and cleared) by the decoder. Only the group
   * being read can have such a piece: every earlier one got its target at its end.
   */
  early: EventMetadata | undefined = undefined;

  private grow(need: number): void {
    let size = this.scratch.length * 2;
    while (size < this.length + need + 1) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.scratch.copy(bigger, 0, 0, this.length);
    this.scratch = bigger;
  }
}

function parseData(text: string, type: string, file: string, fileOffset: number): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new CorruptLogError(
      file,
      fileOffset,
      `the data of event ${type} as JSON (${(err as Error).message})`,
    );
  }
}

/** An envelope's metadata: a JSON object, as the App only logs. */
export function parseMetadata(text: string, file: string, fileOffset: number): EventMetadata {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw new CorruptLogError(file, fileOffset, `the envelope metadata as JSON (${(err as Error).message})`);
  }
  if (!isJsonObject(m)) throw new CorruptLogError(file, fileOffset, 'the envelope metadata as a JSON object');
  return m as EventMetadata;
}

function isJsonObject(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function parseValue(text: string, file: string, fileOffset: number): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new CorruptLogError(file, fileOffset, `the value of SET as JSON (${(err as Error).message})`);
  }
}
