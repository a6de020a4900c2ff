/**
 * RESP as the AOF uses it: arrays of bulk strings (`*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per
 * argument) and `#` annotation lines. One encoder for the append path and the rewrite, one
 * incremental scanner for replay, repair and the CLI.
 *
 * The scanner works on Buffers and byte offsets only: it never builds a string per byte, and the
 * caller decides which arguments become strings. It tells an incomplete record (`NEED_MORE`: the
 * bytes stop before the record does) from a malformed one (`ERROR`: a byte that cannot be there),
 * because Redis repairs the first at the end of the log and refuses the second anywhere.
 */

export { RespEncoder } from './resp-encoder';

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
const HASH = 35;
const ZERO = 48;

/** Redis reads annotation lines with a 1024-byte buffer (AOF_ANNOTATION_LINE_MAX_LEN). */
export const ANNOTATION_MAX_LEN = 1024;

/** A length header longer than this many digits is garbage, not a length. */
const MAX_DIGITS = 15;

/** Strings of bytes, read without the Buffer#toString dispatch (Node's own fast path). */
interface FastSlices {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}

/** `buf[start..end)` as UTF-8: Buffer#utf8Slice, which toString('utf8', …) ends in after checks we do not need. */
export function utf8(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as FastSlices).utf8Slice(start, end);
}

/** {@link RespScanner.scan} found a whole command; its arguments are in `argStart`/`argEnd`. */
export const RECORD = 0;
/** {@link RespScanner.scan} found a whole `#` annotation line (`argStart[0]..argEnd[0]` is its text, without `#` and line end). */
export const ANNOTATION = 1;
/** The bytes end before the item does: read more, or, at the end of the file, it is truncated. */
export const NEED_MORE = 2;
/** A byte that cannot be there: `errorAt` and `expected` say where and what. */
export const ERROR = 3;
/** The outcome of one {@link RespScanner.scan}. */
export type ScanResult = typeof RECORD | typeof ANNOTATION | typeof NEED_MORE | typeof ERROR;

/**
 * Scans one item (command or annotation) at a time from a Buffer. Results are left in fields,
 * so that a scan allocates nothing; the arrays of argument offsets are reused.
 */
export class RespScanner {
  /** Offset just past the item. */
  end = 0;
  /** Arguments of the last command. */
  argc = 0;
  argStart = new Int32Array(16);
  argEnd = new Int32Array(16);
  /** Line ends (CRLF) consumed so far by the last scan, whatever its outcome (redis-check-aof counts them). */
  lines = 0;
  /** Where the bad byte is, for `ERROR`. */
  errorAt = 0;
  /** What was expected there, for `ERROR`. */
  expected = '';
  /** The shortest buffer end that could complete the item, for `NEED_MORE` (a lower bound). */
  needUpTo = 0;

  /** Scans the item that starts at `pos`; never reads at or beyond `limit`. */
  scan(buf: Buffer, pos: number, limit: number): ScanResult {
    this.lines = 0;
    if (pos >= limit) {
      this.needUpTo = pos + 1;
      return NEED_MORE;
    }
    const first = buf[pos];
    if (first === HASH) return this.scanAnnotation(buf, pos, limit);
    if (first !== STAR) return this.fail(pos, "'*' or '#' at the start of a record");
    let p = this.readNumber(buf, pos + 1, limit);
    if (p < 0) return p === -1 ? this.more(limit + 1) : ERROR;
    const argc = this.number;
    if (argc < 1) return this.fail(pos + 1, 'an argument count of at least 1');
    this.argc = argc;
    for (let i = 0; i < argc; i++) {
      // The offset arrays grow with the arguments actually read, never to the announced count:
      // a corrupted `*999999999999999` must cost no more memory than the bytes that follow it
      // (growing up front threw a RangeError past 2^32 entries, and allocated gigabytes below).
      if (i === this.argStart.length) this.grow(i + 1);
      if (p >= limit) return this.more(p + 1);
      if (buf[p] !== DOLLAR) return this.fail(p, `'$' (argument ${i + 1} of ${argc})`);
      p = this.readNumber(buf, p + 1, limit);
      if (p < 0) return p === -1 ? this.more(limit + 1) : ERROR;
      const len = this.number;
      const dataEnd = p + len;
      if (dataEnd + 2 > limit) return this.more(dataEnd + 2);
      if (buf[dataEnd] !== CR || buf[dataEnd + 1] !== LF) {
        return this.fail(dataEnd, `'\\r\\n' after the ${len} bytes of argument ${i + 1}`);
      }
      this.argStart[i] = p;
      this.argEnd[i] = dataEnd;
      this.lines++;
      p = dataEnd + 2;
    }
    this.end = p;
    return RECORD;
  }

  private number = 0;

  /** Reads digits then CRLF from `p`; returns the offset after them, -1 for more bytes, -2 for an error. */
  private readNumber(buf: Buffer, p: number, limit: number): number {
    let n = 0;
    const start = p;
    while (p < limit) {
      const c = buf[p];
      if (c >= ZERO && c <= ZERO + 9) {
        n = n * 10 + (c - ZERO);
        p++;
        if (p - start > MAX_DIGITS) {
          this.fail(p, 'a length of at most 15 digits');
          return -2;
        }
        continue;
      }
      if (p === start) {
        this.fail(p, 'a decimal number');
        return -2;
      }
      if (c !== CR) {
        this.fail(p, "'\\r\\n' after a number");
        return -2;
      }
      if (p + 1 >= limit) return -1;
      if (buf[p + 1] !== LF) {
        this.fail(p + 1, "'\\n' after '\\r'");
        return -2;
      }
      this.number = n;
      this.lines++;
      return p + 2;
    }
    return -1;
  }

  private scanAnnotation(buf: Buffer, pos: number, limit: number): ScanResult {
    const nl = buf.indexOf(LF, pos);
    if (nl >= 0 && nl < limit) {
      if (nl - pos > ANNOTATION_MAX_LEN)
        return this.fail(pos, `an annotation line of at most ${ANNOTATION_MAX_LEN} bytes`);
      this.argc = 1;
      this.argStart[0] = pos + 1;
      this.argEnd[0] = nl > pos + 1 && buf[nl - 1] === CR ? nl - 1 : nl;
      this.end = nl + 1;
      return ANNOTATION;
    }
    if (limit - pos > ANNOTATION_MAX_LEN)
      return this.fail(pos, `an annotation line of at most ${ANNOTATION_MAX_LEN} bytes`);
    return this.more(limit + 1);
  }

  private more(upTo: number): ScanResult {
    this.needUpTo = upTo;
    return NEED_MORE;
  }

  private fail(at: number, expected: string): ScanResult {
    this.errorAt = at;
    this.expected = expected;
    return ERROR;
  }

  /** Doubles the offset arrays, keeping the offsets of the arguments already read. */
  private grow(argc: number): void {
    let size = this.argStart.length;
    while (size < argc) size *= 2;
    const start = new Int32Array(size);
    const end = new Int32Array(size);
    start.set(this.argStart);
    end.set(this.argEnd);
    this.argStart = start;
    this.argEnd = end;
  }
}

/** True when `buf[start..end)` holds exactly the ASCII bytes of `word` (case-sensitive). */
export function bytesEqual(buf: Buffer, start: number, end: number, word: Buffer): boolean {
  const n = word.length;
  if (end - start !== n) return false;
  for (let i = 0; i < n; i++) if (buf[start + i] !== word[i]) return false;
  return true;
}

/** True when `buf[start..end)` equals the ASCII `word` ignoring case, as Redis compares command names. */
export function bytesEqualIgnoreCase(buf: Buffer, start: number, end: number, word: Buffer): boolean {
  const n = word.length;
  if (end - start !== n) return false;
  for (let i = 0; i < n; i++) if ((buf[start + i] | 0x20) !== (word[i] | 0x20)) return false;
  return true;
}
