import { writeHex8 } from './crc';

/*
 * The RESP encoder of the append path and the rewrite: groups of a tick are encoded straight
 * into one growing Buffer, which goes to the file in one write. No string is built for a
 * record: lengths, digits and checksums are written as bytes.
 */

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
const HASH = 35;
const ZERO = 48;

const CRC_LINE_PREFIX = Buffer.from('#CRC:', 'latin1');

/**
 * A growing byte buffer that RESP is encoded straight into: the append path writes every group
 * of a tick into one of these and hands `bytes()` to a single write.
 */
export class RespEncoder {
  /** The bytes; valid up to `length`. Reallocated (doubling) as it grows. */
  buf: Buffer;
  length = 0;
  /** `bulkInteger`'s last integer and its encoded argument (`$<digits>\r\n<digits>\r\n`). */
  private lastInteger = -1;
  private readonly integerBytes = Buffer.alloc(32);
  private integerLength = 0;
  /** `bulkRepeated`'s last value (null: none kept) and its encoded argument. */
  private lastRepeated: string | null = null;
  private readonly repeatedBytes = Buffer.alloc(160);
  private repeatedLength = 0;

  constructor(initialCapacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialCapacity);
  }

  /** The encoded bytes so far (a view, valid until the next write or `reset`). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  /** Forgets the content; keeps the memory, unless it grew beyond `maxKeep` bytes. */
  reset(maxKeep = 4 * 1024 * 1024): void {
    this.length = 0;
    if (this.buf.length > maxKeep) this.buf = Buffer.allocUnsafe(64 * 1024);
  }

  /** Cuts the content back to `length` bytes (a group that could not be encoded whole). */
  truncate(length: number): void {
    this.length = length;
  }

  private ensure(extra: number): void {
    const need = this.length + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Writes `prefix` (one ASCII byte) then the decimal `n` and CRLF. */
  private header(prefix: number, n: number): void {
    this.ensure(24);
    const buf = this.buf;
    buf[this.length] = prefix;
    let p = writeDecimal(buf, this.length + 1, n);
    buf[p++] = CR;
    buf[p++] = LF;
    this.length = p;
  }

  /** `*<argc>\r\n`: the start of a command. */
  arrayHeader(argc: number): void {
    this.header(STAR, argc);
  }

  /**
   * One argument: `$<byte length>\r\n<utf-8 bytes>\r\n`. For short strings the bytes are written
   * first, after a length header sized for `value.length` (a lower bound of the byte length), and
   * moved in the rare case the header needs more digits: one pass over the string instead of
   * Buffer.byteLength's extra one.
   */
  bulk(value: string): void {
    const len = value.length;
    if (len > 4096) {
      const n = Buffer.byteLength(value, 'utf8');
      this.header(DOLLAR, n);
      this.ensure(n + 2);
      const p = this.length + (this.buf as unknown as FastWrites).utf8Write(value, this.length, n);
      this.buf[p] = CR;
      this.buf[p + 1] = LF;
      this.length = p + 2;
      return;
    }
    this.ensure(len * 3 + 24);
    const buf = this.buf;
    const start = this.length;
    const guess = digits(len);
    let data = start + 1 + guess + 2;
    const n = (buf as unknown as FastWrites).utf8Write(value, data, len * 3);
    const need = digits(n);
    if (need !== guess) {
      buf.copyWithin(data + need - guess, data, data + n);
      data += need - guess;
    }
    this.frame(start, data, n);
  }

  /**
   * `bulk(JSON.stringify(value))`, byte for byte, written straight into the buffer when
   * {@link writeJson} takes the value (the plain objects, arrays, ASCII strings and numbers that
   * events and metadata are mostly made of): no string is made, nor encoded again. Anything else
   * goes through JSON.stringify, whose text is then the argument (so do values of more than a few
   * KiB). The length header is sized for 2 digits and the text moved when it needs another number.
   */
  bulkJson(value: unknown): void {
    this.ensure(JSON_ROOM);
    const buf = this.buf;
    const start = this.length;
    const data = start + 5; // `$`, 2 digits, CRLF
    // At most JSON_ROOM - 16 bytes of text (a longer value fails fast and goes through
    // JSON.stringify): `ensure` made JSON_ROOM free, and the text may still move 2 bytes on (a
    // 4-digit length) and take its CRLF, all inside the buffer.
    const end = writeJson(buf, data, data + JSON_ROOM - 16, value, MAX_JSON_DEPTH);
    if (end < 0) {
      this.bulk(JSON.stringify(value));
      return;
    }
    const n = end - data;
    const at = data + digits(n) - 2;
    if (at !== data) buf.copyWithin(at, data, end);
    this.frame(start, at, n);
  }

  /**
   * Frames the `n` bytes of text already at `data` as a bulk string opening at `start`: the
   * caller placed the text so that `$<n>\r\n` fills `start..data` exactly.
   */
  private frame(start: number, data: number, n: number): void {
    const buf = this.buf;
    buf[start] = DOLLAR;
    const p = writeDecimal(buf, start + 1, n);
    buf[p] = CR;
    buf[p + 1] = LF;
    buf[data + n] = CR;
    buf[data + n + 1] = LF;
    this.length = data + n + 2;
  }

  /** An argument already in bytes (ASCII command names). */
  bulkBytes(value: Buffer): void {
    this.header(DOLLAR, value.length);
    this.ensure(value.length + 2);
    value.copy(this.buf, this.length);
    let p = this.length + value.length;
    this.buf[p++] = CR;
    this.buf[p++] = LF;
    this.length = p;
  }

  /**
   * Bytes copied as they are (pre-encoded constant records). The record prefixes are a dozen
   * bytes, which a loop copies in half the time of Buffer#copy's checks and native call.
   */
  raw(value: Buffer): void {
    const n = value.length;
    this.ensure(n);
    const buf = this.buf;
    const at = this.length;
    if (n <= 32) for (let i = 0; i < n; i++) buf[at + i] = value[i];
    else value.copy(buf, at);
    this.length = at + n;
  }

  /**
   * One argument that is a non-negative safe integer (a time in ms, a SET value): its digits, with no string
   * made. The commands of one millisecond share their time, so the last one's bytes are kept
   * and copied.
   */
  bulkInteger(n: number): void {
    const cache = this.integerBytes;
    if (n !== this.lastInteger) {
      const d = digits(n);
      cache[0] = DOLLAR;
      let p = writeDecimal(cache, 1, d);
      cache[p++] = CR;
      cache[p++] = LF;
      p = writeDecimal(cache, p, n);
      cache[p++] = CR;
      cache[p++] = LF;
      this.integerLength = p;
      this.lastInteger = n;
    }
    this.copyCached(cache, this.integerLength);
  }

  /**
   * `bulk(value)` for a value that usually repeats from one call to the next (a log's event
   * type): the last value's bytes are kept and copied, which costs less than encoding it again.
   */
  bulkRepeated(value: string): void {
    if (value !== this.lastRepeated) {
      const start = this.length;
      this.bulk(value);
      const n = this.length - start;
      if (n > this.repeatedBytes.length) {
        this.lastRepeated = null; // too long to keep: encoded each time
        return;
      }
      this.buf.copy(this.repeatedBytes, 0, start, this.length);
      this.repeatedLength = n;
      this.lastRepeated = value;
      return;
    }
    this.copyCached(this.repeatedBytes, this.repeatedLength);
  }

  /** Appends `bytes[0..n)` (a few dozen bytes: a loop beats Buffer#copy's checks). */
  private copyCached(bytes: Buffer, n: number): void {
    this.ensure(n);
    const buf = this.buf;
    const at = this.length;
    for (let i = 0; i < n; i++) buf[at + i] = bytes[i];
    this.length = at + n;
  }

  /** `#CRC:<8 hex digits>\r\n`, written without making a string. */
  crcLine(crc: number): void {
    this.ensure(15);
    const buf = this.buf;
    const p = this.length;
    for (let i = 0; i < 5; i++) buf[p + i] = CRC_LINE_PREFIX[i];
    writeHex8(buf, p + 5, crc);
    buf[p + 13] = CR;
    buf[p + 14] = LF;
    this.length = p + 15;
  }

  /** `#<text>\r\n`. `text` must be ASCII without line breaks. */
  annotation(text: string): void {
    this.ensure(text.length + 3);
    const buf = this.buf;
    let p = this.length;
    buf[p++] = HASH;
    p += buf.write(text, p, 'latin1');
    buf[p++] = CR;
    buf[p++] = LF;
    this.length = p;
  }
}

/** Room made before {@link writeJson} runs: a value that does not fit goes through JSON.stringify. */
const JSON_ROOM = 4096;
/** Nesting {@link writeJson} follows; deeper values go through JSON.stringify. */
const MAX_JSON_DEPTH = 8;
const QUOTE = 34;
const BACKSLASH = 92;
const TEXT_NULL = Buffer.from('null', 'latin1');
const TEXT_TRUE = Buffer.from('true', 'latin1');
const TEXT_FALSE = Buffer.from('false', 'latin1');

/**
 * Writes at `buf[p]` exactly the bytes of `JSON.stringify(value)` and returns where they end, for
 * the values it knows to spell the same way; returns -1 for anything else (then the caller uses
 * JSON.stringify, so no value is ever written differently):
 * - strings of printable ASCII without `"` or `\` (no escape, one byte per character);
 * - finite numbers (integers as digits, others as `String(n)`, JSON's own number form; -0 is 0);
 * - true, false, null;
 * - arrays without holes or undefined elements, and objects whose prototype is Object's or null
 *   without `toJSON` and without undefined, function or symbol values (JSON omits or rewrites
 *   those), their keys in `Object.keys` order, which is JSON.stringify's.
 * Nothing is written past `end`; a value that would not fit returns -1.
 */
function writeJson(buf: Buffer, p: number, end: number, value: unknown, depth: number): number {
  switch (typeof value) {
    case 'string':
      return writeJsonString(buf, p, end, value);
    case 'number': {
      if (p + 24 > end) return -1;
      if (Number.isSafeInteger(value)) {
        let n = value as number;
        if (n < 0) {
          buf[p++] = 45;
          n = -n;
        }
        return writeDecimal(buf, p, n);
      }
      if (!Number.isFinite(value)) return -1;
      const text = String(value);
      for (let i = 0; i < text.length; i++) buf[p + i] = text.charCodeAt(i);
      return p + text.length;
    }
    case 'boolean':
      return writeBytes(buf, p, end, value ? TEXT_TRUE : TEXT_FALSE);
    case 'object':
      break;
    default:
      return -1;
  }
  if (value === null) return writeBytes(buf, p, end, TEXT_NULL);
  if (depth === 0) return -1;
  if (Array.isArray(value)) {
    if (
      Object.getPrototypeOf(value) !== Array.prototype ||
      typeof (value as { toJSON?: unknown }).toJSON === 'function'
    )
      return -1;
    if (p >= end) return -1;
    buf[p++] = 91; // [
    for (let i = 0; i < value.length; i++) {
      if (i > 0) {
        if (p >= end) return -1;
        buf[p++] = 44; // ,
      }
      const v: unknown = value[i];
      if (v === undefined) return -1;
      p = writeJson(buf, p, end, v, depth - 1);
      if (p < 0) return -1;
    }
    if (p >= end) return -1;
    buf[p++] = 93; // ]
    return p;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (
    (proto !== Object.prototype && proto !== null) ||
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  )
    return -1;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (p >= end) return -1;
  buf[p++] = 123; // {
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const v = record[key];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return -1;
    if (i > 0) {
      if (p >= end) return -1;
      buf[p++] = 44; // ,
    }
    p = writeJsonString(buf, p, end, key);
    if (p < 0 || p >= end) return -1;
    buf[p++] = 58; // :
    p = writeJson(buf, p, end, v, depth - 1);
    if (p < 0) return -1;
  }
  if (p >= end) return -1;
  buf[p++] = 125; // }
  return p;
}

/** A JSON string of printable ASCII needing no escape, quoted; -1 for any other string. */
function writeJsonString(buf: Buffer, p: number, end: number, value: string): number {
  const n = value.length;
  if (p + n + 2 > end) return -1;
  buf[p] = QUOTE;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 32 || c > 126 || c === QUOTE || c === BACKSLASH) return -1;
    buf[p + 1 + i] = c;
  }
  buf[p + 1 + n] = QUOTE;
  return p + n + 2;
}

function writeBytes(buf: Buffer, p: number, end: number, bytes: Buffer): number {
  if (p + bytes.length > end) return -1;
  for (let i = 0; i < bytes.length; i++) buf[p + i] = bytes[i];
  return p + bytes.length;
}

/** Buffer's own UTF-8 writer, without Buffer#write's argument dispatch. */
interface FastWrites {
  utf8Write(value: string, offset: number, length: number): number;
}

/** Decimal digits of a non-negative integer (powers of ten are exact doubles up to 10^22). */
function digits(n: number): number {
  let d = 1;
  for (let power = 10; n >= power; power *= 10) d++;
  return d;
}

/**
 * Writes the decimal digits of a non-negative safe integer at `buf[p]`; returns the offset after
 * them. Above 2^31 the low 8 digits are split off first, so that both halves take int32
 * arithmetic instead of a floating-point division per digit.
 */
function writeDecimal(buf: Buffer, p: number, n: number): number {
  const d = digits(n);
  let i = p + d - 1;
  if (n >= 0x80000000) {
    let low = n % 1e8;
    n = Math.floor(n / 1e8);
    for (let k = 0; k < 8; k++) {
      buf[i--] = ZERO + (low % 10);
      low = (low / 10) | 0;
    }
  }
  for (; i >= p; i--) {
    buf[i] = ZERO + (n % 10);
    n = (n / 10) | 0;
  }
  return p + d;
}
