import { CorruptLogError } from '../../src/index';
import type { ByteWindow } from './byte-window';
import { crc32, readHex8 } from './crc';
import { CMD_ENVELOPE, CMD_EXEC, CMD_MULTI, CMD_POSITION, commandKind, crcHex } from './record-codec';
import { ANNOTATION, ERROR, RECORD, RespScanner } from './resp';
import { isCrcLinePrefix } from './torn-tail';

/*
 * The groups of one AOF file, as the store wrote them: optional `#TS:` line, optional `@env`
 * record (the envelope: ids, versions, time in ms, metadata), then one command or MULTI … EXEC,
 * then optional `#CRC:` line. The one place that draws group boundaries, for the
 * store's reader and for the CLI's walk (whose edits must cut exactly where a load would).
 *
 * Invariants:
 * - A `#CRC` line covers the group's bytes from its first byte (its `#TS` line, if any) to the
 *   `#CRC` line; a mismatch is corruption wherever it is. A group without one is accepted (a
 *   hand-edited file), except at the end of the file right after a group that had one, with no
 *   comment line between: there it is a torn write (torn-tail.ts).
 * - Between groups, a `#TS` line opens the next group; any other `#` line belongs to no group, so
 *   a comment added by hand breaks no checksum. Inside a group, a `#` line is part of its bytes.
 * - MULTI and EXEC are ours only with exactly that case and no argument: a user event may be
 *   called `multi`. A MULTI inside MULTI or an EXEC without MULTI is corruption.
 * - An `@env` record opens a group and never completes one: it is part of the bytes of the group
 *   that follows it (its `#CRC` covers it), so a cut never separates an envelope from its events.
 *   One per group, before MULTI; anywhere else it is corruption.
 * - A `@pos` record (a reaction's consumer position) lies inside MULTI … EXEC, once, after at
 *   least one event: it is part of the group, so a torn group loses its position with its
 *   events, and a whole group keeps both. It is not an event (it has no seq); anywhere else it
 *   is corruption.
 * - A group is reported (GROUP) only once complete, so an unfinished one never reaches a caller:
 *   at the end of the file it is TORN, and `tornAt` is where the last whole group ends.
 */

/** A command of the group being read (not MULTI/EXEC): its arguments are in `sc`, it starts at `commandAt`. */
export const COMMAND = 0;
/** The group whose commands were just returned is complete: `start`, `end`, `crcAt`, `checked`. */
export const GROUP = 1;
/** The window holds no further item: call {@link GroupFramer.refill}, then `next` again. */
export const REFILL = 2;
/** The file ends after a whole group (or holds none). */
export const END = 3;
/** The file ends inside a group: `tornAt` and `tornKind` say where and how. */
export const TORN = 4;
/** The group's `@env` record: its arguments are in `sc`, it starts at `commandAt`. */
export const ENVELOPE = 5;
/** The group's `@pos` record (a reaction's consumer position): its arguments are in `sc`, it starts at `commandAt`. */
export const POSITION = 6;
export type FrameResult =
  | typeof COMMAND
  | typeof GROUP
  | typeof REFILL
  | typeof END
  | typeof TORN
  | typeof ENVELOPE
  | typeof POSITION;

/**
 * How the file ends inside a group: its records stop short (`records`, Redis's short read), they
 * are whole but the `#CRC` line is torn or missing (`crc`), or a `#TS` line has nothing after it (`ts`).
 */
export type TornKind = 'records' | 'crc' | 'ts';

/** Steps through the groups of one file; `next` is synchronous, so a read costs no promise per item. */
export class GroupFramer {
  readonly sc = new RespScanner();
  window!: ByteWindow;

  /** The group being read (valid until the `next` after its GROUP): inside MULTI, had MULTI, commands so far. */
  inMulti = false;
  multi = false;
  commands = 0;
  /** The group being read has its `@env` record (returned as ENVELOPE). */
  envelope = false;
  /** The group being read has its `@pos` record (returned as POSITION). */
  position = false;
  /** Buffer offset of the command just returned (COMMAND); it ends at `sc.end`. */
  commandAt = 0;
  /** Unix seconds of the group's own `#TS` line, or -1. */
  ownTs = -1;
  /** Unix seconds of the last valid `#TS` line read, in this file or an earlier one, or -1. */
  lastTs = -1;

  /** The group just reported (GROUP), as file offsets: its first byte, just past it, its `#CRC` line or -1. */
  start = 0;
  end = 0;
  crcAt = -1;
  /** Its `#CRC` line was there (and matched, when verifying). */
  checked = false;

  /** TORN: the file offset to cut at, where the last whole group ends. */
  tornAt = 0;
  tornKind: TornKind = 'records';

  /** Buffer offset of the next item. */
  private pos = 0;
  /** Buffer offset of the group being read: its `#TS` line, else its first record. */
  private groupStart = 0;
  /** Its command or EXEC is whole: its `#CRC` line, or the next group, may follow. */
  private complete = false;
  /** GROUP was returned: the group fields are reset by the next `next`. */
  private ended = false;
  /**
   * The group before had its `#CRC` line, with nothing but a `#TS` line since: what follows is
   * the writer's, and it writes a `#CRC` line after every group.
   */
  private prevChecked = false;

  /**
   * `verify: false` draws the same groups without comparing checksums (a `#CRC` line still ends
   * its group): for tools that locate damage found by a verifying read.
   */
  constructor(private readonly verify = true) {}

  /** Starts on a new file; `lastTs` carries over, as a replay's clock does. */
  begin(window: ByteWindow): void {
    this.window = window;
    this.pos = 0;
    this.groupStart = 0;
    this.inMulti = false;
    this.complete = false;
    this.prevChecked = false;
    this.resetGroup();
  }

  /** File offset of the group being read. */
  get groupOffset(): number {
    return this.window.base + this.groupStart;
  }

  next(): FrameResult {
    if (this.ended) this.resetGroup();
    const w = this.window;
    const buf = w.buf;
    const sc = this.sc;
    while (true) {
      const pos = this.pos;
      const r = sc.scan(buf, pos, w.fill);
      if (r === RECORD) {
        // A group without #CRC ends where the next one starts; this item is scanned again after.
        if (this.complete) return this.endGroup(pos, -1);
        this.pos = sc.end;
        const kind = commandKind(buf, sc);
        if (kind === CMD_MULTI) {
          if (this.inMulti) throw this.corrupt(pos, 'EXEC before another MULTI', 'MULTI inside MULTI');
          this.inMulti = true;
          this.multi = true;
        } else if (kind === CMD_EXEC) {
          if (!this.inMulti) throw this.corrupt(pos, 'MULTI before EXEC', 'EXEC without MULTI');
          this.inMulti = false;
          this.complete = true;
        } else if (kind === CMD_ENVELOPE) {
          if (this.inMulti || this.multi || this.commands > 0 || this.envelope)
            throw this.corrupt(
              pos,
              'an event record',
              'an @env record inside a group (it comes first, once)',
            );
          this.envelope = true;
          this.commandAt = pos;
          return ENVELOPE;
        } else if (kind === CMD_POSITION) {
          if (!this.inMulti || this.commands === 0 || this.position)
            throw this.corrupt(
              pos,
              'an event record',
              'a @pos record outside MULTI … EXEC, before any event, or twice in a group',
            );
          this.position = true;
          this.commandAt = pos;
          return POSITION;
        } else {
          this.commands++;
          this.commandAt = pos;
          if (!this.inMulti) this.complete = true;
          return COMMAND;
        }
      } else if (r === ANNOTATION) {
        const s = sc.argStart[0];
        const e = sc.argEnd[0];
        // `#CRC:` + 8 hex digits, compared as bytes: no string per group.
        if (e - s === 12 && buf[s] === 67 && buf[s + 1] === 82 && buf[s + 2] === 67 && buf[s + 3] === 58) {
          if (!this.complete) {
            throw this.corrupt(
              pos,
              this.inMulti ? 'EXEC before #CRC' : 'a record before #CRC',
              'a checksum line with no group before it',
            );
          }
          const got = this.verify ? crc32(buf, this.groupStart, pos) : 0;
          if (this.verify && readHex8(buf, s + 4) !== got) {
            const from = w.base + this.groupStart;
            throw this.corrupt(
              this.groupStart,
              `a group matching #CRC:${buf.toString('latin1', s + 4, e)}`,
              `the bytes from offset ${from} to ${w.base + pos} have CRC ${crcHex(got)}: a byte was changed`,
            );
          }
          this.pos = sc.end;
          return this.endGroup(pos, sc.end);
        }
        if (this.complete) return this.endGroup(pos, -1);
        this.pos = sc.end;
        if (!this.inMulti && this.commands === 0 && !this.envelope) this.betweenGroups(pos, s, e, sc.end);
      } else if (r === ERROR) {
        throw this.corrupt(sc.errorAt, sc.expected);
      } else {
        return this.outOfBytes();
      }
    }
  }

  /** After REFILL: reads on, keeping the group being read in the window (its #CRC covers it). */
  async refill(): Promise<void> {
    const shift = await this.window.refill(this.groupStart, this.sc.needUpTo);
    this.pos -= shift;
    this.groupStart -= shift;
  }

  /** The annotation at `at` (text `s..e`, ending at `end`) lies between groups: a `#TS` line opens the next one. */
  private betweenGroups(at: number, s: number, e: number, end: number): void {
    const buf = this.window.buf;
    if (e - s > 3 && buf[s] === 84 && buf[s + 1] === 83 && buf[s + 2] === 58) {
      const ts = Number(buf.toString('latin1', s + 3, e));
      const valid = Number.isSafeInteger(ts) && ts >= 0;
      this.ownTs = valid ? ts : -1;
      if (valid) this.lastTs = ts;
      this.groupStart = at;
    } else {
      // The writer never writes such a line: what follows it was added by hand, #CRC or not.
      this.ownTs = -1;
      this.groupStart = end;
      this.prevChecked = false;
    }
  }

  /** The scanner needs bytes the window lacks: read on, or decide what the end of the file leaves. */
  private outOfBytes(): FrameResult {
    const w = this.window;
    if (!w.atEnd && w.base + this.sc.needUpTo <= w.size) return REFILL;
    if (this.complete) {
      // Whole records, and no whole #CRC line after them: torn if what follows is the start of
      // one, or if the writer of this file writes one (the previous group has one).
      if (this.prevChecked || isCrcLinePrefix(w.buf, this.pos, w.fill)) return this.torn('crc');
      return this.endGroup(this.pos, -1);
    }
    if (this.pos >= w.fill && !this.inMulti && this.commands === 0)
      return this.groupStart >= this.pos ? END : this.torn(this.envelope ? 'records' : 'ts');
    return this.torn('records');
  }

  /** The group being read ends before buffer offset `next`; `crcEnd` ≥ 0: just past its matching #CRC line. */
  private endGroup(next: number, crcEnd: number): FrameResult {
    const base = this.window.base;
    const checked = crcEnd >= 0;
    this.start = base + this.groupStart;
    this.end = base + (checked ? crcEnd : next);
    this.crcAt = checked ? base + next : -1;
    this.checked = checked;
    this.prevChecked = checked;
    this.groupStart = checked ? crcEnd : next;
    this.complete = false;
    this.ended = true;
    return GROUP;
  }

  private torn(kind: TornKind): FrameResult {
    this.tornKind = kind;
    this.tornAt = this.window.base + this.groupStart;
    return TORN;
  }

  private resetGroup(): void {
    this.ended = false;
    this.multi = false;
    this.commands = 0;
    this.envelope = false;
    this.position = false;
    this.ownTs = -1;
  }

  private corrupt(at: number, expected: string, detail?: string): CorruptLogError {
    return new CorruptLogError(this.window.name, this.window.base + at, expected, detail);
  }
}
