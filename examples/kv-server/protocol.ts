import { isUtf8 } from 'node:buffer';

/**
 * The request side of RESP2, as a Redis server reads it: multibulk requests
 * (`*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument) and inline requests (one line of
 * space-separated words, with quotes, as typed into telnet), pipelined, arriving in TCP chunks
 * cut anywhere.
 *
 * Why not the AOF codec (adapters/aof/resp.ts): a log reader trusts its input to be a log. It has
 * no inline requests, grows its offset arrays to whatever argument count a header claims, waits
 * for whatever bulk length a header claims, and accepts `#` annotations. A server must refuse
 * a hostile header as soon as it is read, before buffering a byte of what it announces.
 *
 * The parser is resumable, as Redis's processMultibulkBuffer: it remembers how many arguments
 * are left and keeps those already decoded, so a request that arrives in a thousand chunks is
 * scanned once, and a large argument is gathered once into a buffer of its final size.
 */

/** The bounds one connection's parser enforces. */
export interface ProtocolLimits {
  /** Longest inline request and longest `*`/`$` header line (Redis's PROTO_INLINE_MAX_SIZE: 64 KiB). */
  readonly maxInline: number;
  /** Longest bulk argument (Redis's proto-max-bulk-len). */
  readonly maxBulk: number;
  /** Most arguments in one request (Redis: 1024 × 1024). */
  readonly maxArgs: number;
}

/** The limits of Redis, except a bulk bound that a JavaScript string can hold. */
export const DEFAULT_LIMITS: ProtocolLimits = {
  maxInline: 64 * 1024,
  maxBulk: 64 * 1024 * 1024,
  maxArgs: 1024 * 1024,
};

/** Before AUTH, a client may send only small requests (Redis 7.2 does the same). */
const UNAUTHENTICATED_MAX_ARGS = 10;
const UNAUTHENTICATED_MAX_BULK = 16 * 1024;

/** A request that breaks the protocol: the server answers `-ERR Protocol error: …` and closes the connection. */
export class ProtocolError extends Error {
  constructor(detail: string) {
    super(`Protocol error: ${detail}`);
    this.name = 'ProtocolError';
  }
}

/** One request: its arguments, and whether one of them was not valid UTF-8 (values are JSON strings). */
export interface Request {
  readonly args: string[];
  readonly invalidUtf8: boolean;
  /**
   * The bytes of the arguments that are not valid UTF-8, by index (null when all are valid): a
   * command that stores nothing, such as ECHO (redis-cli --pipe echoes 20 random bytes), can
   * answer them exactly.
   */
  readonly binary: (Buffer | undefined)[] | null;
}

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;
const EMPTY = Buffer.alloc(0);

/** Parses the requests of one connection. Feed it with `push`, take requests with `next` until it returns null. */
export class RequestParser {
  private buf: Buffer = EMPTY;
  private pos = 0;
  /** Chunks received while fewer than `need` bytes were available: joined once, when enough have come. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Bytes from `pos` the current step needs before it can go on. */
  private need = 1;
  /** Arguments still to read of the current multibulk request; 0 between requests. */
  private argsLeft = 0;
  private args: string[] = [];
  private invalidUtf8 = false;
  private binary: (Buffer | undefined)[] | null = null;
  /** A copy of the bytes of the argument just decoded, when they were not UTF-8. */
  private lastBinary: Buffer | null = null;
  /** Length of the bulk argument whose header was read, or -1. */
  private bulkLength = -1;

  /** Set once the client has authenticated: the small bounds for strangers no longer apply. */
  authenticated: boolean;

  constructor(
    private readonly limits: ProtocolLimits = DEFAULT_LIMITS,
    authenticated = true,
  ) {
    this.authenticated = authenticated;
  }

  /** Bytes received and not yet consumed (a connection that holds none holds no buffer). */
  get buffered(): number {
    return this.buf.length - this.pos + this.pendingLength;
  }

  /** Adds bytes received. The chunk is kept, not copied, until it has been parsed. */
  push(chunk: Buffer): void {
    if (this.pos >= this.buf.length && this.pendingLength === 0) {
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.pending.push(chunk);
      this.pendingLength += chunk.length;
    }
  }

  /** The next whole request, or null until more bytes arrive. Throws {@link ProtocolError}. */
  next(): Request | null {
    for (;;) {
      if (this.buffered < this.need) {
        this.releaseIfEmpty();
        return null;
      }
      this.join();
      this.need = 1;
      if (this.argsLeft === 0) {
        if (this.buf[this.pos] !== STAR) {
          const inline = this.inline();
          if (inline === null) return null;
          if (inline.length === 0) continue; // an empty line, as Redis, is no request
          return this.take(inline);
        }
        if (!this.multibulkHeader()) return null;
        if (this.argsLeft === 0) continue; // `*0` or `*-1`: nothing to run
      }
      if (!this.bulkArguments()) return null;
      return this.take(this.args);
    }
  }

  private take(args: string[]): Request {
    const request: Request = { args, invalidUtf8: this.invalidUtf8, binary: this.binary };
    this.args = [];
    this.invalidUtf8 = false;
    this.binary = null;
    this.releaseIfEmpty();
    return request;
  }

  /** Idle connections cost nothing: once everything is consumed, the last chunk is let go. */
  private releaseIfEmpty(): void {
    if (this.pos >= this.buf.length && this.pendingLength === 0) {
      this.buf = EMPTY;
      this.pos = 0;
    }
  }

  private join(): void {
    if (this.pendingLength === 0) return;
    const rest = this.buf.subarray(this.pos);
    this.buf = Buffer.concat([rest, ...this.pending], rest.length + this.pendingLength);
    this.pos = 0;
    this.pending = [];
    this.pendingLength = 0;
  }

  /** Reads `\r\n`-terminated header digits after `pos + 1`; returns the number, or null for more bytes. */
  private headerNumber(tooLong: string): number | null {
    const buf = this.buf;
    const cr = buf.indexOf(CR, this.pos);
    if (cr < 0 || cr + 1 >= buf.length) {
      if (buf.length - this.pos > this.limits.maxInline) throw new ProtocolError(tooLong);
      this.need = buf.length - this.pos + 1;
      return null;
    }
    if (cr - this.pos > this.limits.maxInline) throw new ProtocolError(tooLong);
    let p = this.pos + 1;
    const negative = buf[p] === 45;
    if (negative) p++;
    let n = 0;
    // More than 15 digits cannot be a valid length or count: refuse it before it overflows.
    if (p === cr || cr - p > 15) return Number.NaN;
    for (; p < cr; p++) {
      const c = buf[p] - 48;
      if (c < 0 || c > 9) return Number.NaN;
      n = n * 10 + c;
    }
    this.pos = cr + 2;
    return negative ? -n : n;
  }

  private multibulkHeader(): boolean {
    const count = this.headerNumber('too big mbulk count string');
    if (count === null) return false;
    if (Number.isNaN(count) || count > this.limits.maxArgs)
      throw new ProtocolError('invalid multibulk length');
    if (!this.authenticated && count > UNAUTHENTICATED_MAX_ARGS) {
      throw new ProtocolError('unauthenticated multibulk length');
    }
    this.argsLeft = Math.max(count, 0);
    this.bulkLength = -1;
    return true;
  }

  /** Reads the remaining arguments of a multibulk request; false when more bytes are needed. */
  private bulkArguments(): boolean {
    while (this.argsLeft > 0) {
      if (this.bulkLength < 0) {
        if (this.pos >= this.buf.length) return this.more(1);
        const first = this.buf[this.pos];
        if (first !== DOLLAR) {
          throw new ProtocolError(`expected '$', got '${String.fromCharCode(first)}'`);
        }
        const length = this.headerNumber('too big bulk count string');
        if (length === null) return false;
        if (Number.isNaN(length) || length < 0 || length > this.limits.maxBulk) {
          throw new ProtocolError('invalid bulk length');
        }
        if (!this.authenticated && length > UNAUTHENTICATED_MAX_BULK) {
          throw new ProtocolError('unauthenticated bulk length');
        }
        this.bulkLength = length;
      }
      const end = this.pos + this.bulkLength;
      if (end + 2 > this.buf.length) return this.more(this.bulkLength + 2);
      const arg = this.decode(this.pos, end);
      if (this.lastBinary !== null) {
        if (this.binary === null) this.binary = [];
        this.binary[this.args.length] = this.lastBinary;
        this.lastBinary = null;
      }
      this.args.push(arg);
      // As Redis, the two bytes after the data are skipped, not checked.
      this.pos = end + 2;
      this.bulkLength = -1;
      this.argsLeft--;
    }
    return true;
  }

  private more(bytes: number): false {
    this.need = bytes;
    return false;
  }

  private decode(start: number, end: number): string {
    const s = this.buf.toString('utf8', start, end);
    // A U+FFFD in the result is either in the input or a replaced invalid sequence: check only then.
    if (s.indexOf('\uFFFD') >= 0 && !isUtf8(this.buf.subarray(start, end))) {
      this.invalidUtf8 = true;
      this.lastBinary = Buffer.from(this.buf.subarray(start, end));
    }
    return s;
  }

  /** An inline request: one line, split as Redis's sdssplitargs does. Null until the line is whole. */
  private inline(): string[] | null {
    const buf = this.buf;
    const lf = buf.indexOf(LF, this.pos);
    if (lf < 0) {
      if (buf.length - this.pos > this.limits.maxInline) throw new ProtocolError('too big inline request');
      this.need = buf.length - this.pos + 1;
      return null;
    }
    if (lf - this.pos > this.limits.maxInline) throw new ProtocolError('too big inline request');
    const end = lf > this.pos && buf[lf - 1] === CR ? lf - 1 : lf;
    const line = this.decode(this.pos, end);
    this.lastBinary = null; // inline requests are text: a bad byte only marks the request
    this.pos = lf + 1;
    const args = splitArgs(line);
    if (args === null) throw new ProtocolError('unbalanced quotes in request');
    if (!this.authenticated && args.length > UNAUTHENTICATED_MAX_ARGS) {
      throw new ProtocolError('unauthenticated multibulk length');
    }
    return args;
  }
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' };

/**
 * Splits an inline request as Redis's sdssplitargs: words separated by blanks; "double quotes"
 * with `\n \r \t \b \a \\ \" \xHH` escapes; 'single quotes' with `\'`; a closing quote must be
 * followed by a blank. Null when the quotes do not balance.
 */
export function splitArgs(line: string): string[] | null {
  const args: string[] = [];
  let i = 0;
  const n = line.length;
  const blank = (c: string | undefined) =>
    c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
  for (;;) {
    while (i < n && blank(line[i])) i++;
    if (i >= n) return args;
    let word = '';
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      const c = line[i];
      if (inDouble) {
        if (i >= n) return null;
        if (c === '\\' && line[i + 1] === 'x' && isHex(line[i + 2]) && isHex(line[i + 3])) {
          word += String.fromCharCode(Number.parseInt(line.slice(i + 2, i + 4), 16));
          i += 3;
        } else if (c === '\\' && i + 1 < n) {
          i++;
          word += ESCAPES[line[i]] ?? line[i];
        } else if (c === '"') {
          if (i + 1 < n && !blank(line[i + 1])) return null;
          i++;
          break;
        } else {
          word += c;
        }
      } else if (inSingle) {
        if (i >= n) return null;
        if (c === '\\' && line[i + 1] === "'") {
          i++;
          word += "'";
        } else if (c === "'") {
          if (i + 1 < n && !blank(line[i + 1])) return null;
          i++;
          break;
        } else {
          word += c;
        }
      } else {
        if (i >= n || blank(c)) break;
        if (c === '"') inDouble = true;
        else if (c === "'") inSingle = true;
        else word += c;
      }
      i++;
    }
    args.push(word);
  }
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}
