import { ByteWindow } from '../byte-window';
import { COMMAND, END, ENVELOPE, GROUP, GroupFramer, POSITION, REFILL } from '../group-framer';
import { decodeEnvelope, type Envelope } from '../record-codec';
import { nodeFileSystem } from '../node-file-system';
import { utf8 } from '../resp';
import { CorruptLogError } from '../../../src/index';
import type { AofFile } from './log-files';

/*
 * The byte layout of an AOF file, group by group, for the commands that edit it in place
 * (truncate, strip) and for `check` to find the group that holds a damaged byte: the store's own
 * GroupFramer, so that groups start and end exactly where a load draws them (`#TS` line, command
 * or MULTI … EXEC, `#CRC` line). Decoding and checksums stay in the reader: callers run `check`
 * first (a log that the store refuses is never edited), so this walk only needs offsets and
 * command names.
 */

/** One event record inside a group. */
export interface WalkRecord {
  /** File offsets of the record's bytes, `*` to the last CRLF. */
  readonly start: number;
  readonly end: number;
  /** The command name or event type (the first argument). */
  readonly type: string;
}

/** One command's group, with absolute file offsets. */
export interface WalkGroup {
  /** First byte of the group: its `#TS` line if it has one, else its first record. */
  readonly start: number;
  /** Just past the group (past the `#CRC` line, when there is one). */
  readonly end: number;
  /** Start of the `#CRC` line, or -1 for a group without one. */
  readonly crcAt: number;
  /** Sequence number of the first event. */
  readonly seq: number;
  /** Unix seconds of the group's own `#TS` line, or null when it has none. */
  readonly ts: number | null;
  /** Unix seconds of the last `#TS` line at or before the group (the time replay gives it), or null. */
  readonly time: number | null;
  readonly multi: boolean;
  readonly records: readonly WalkRecord[];
  /** The group's `@env` record: where it is and what it says; absent for a group logged before envelopes. */
  readonly envelope?: WalkEnvelope;
}

/** A group's `@env` record in a walk. */
export interface WalkEnvelope {
  readonly start: number;
  readonly end: number;
  readonly value: Envelope;
}

/** Streams the groups of one file; `firstSeq` is the number of its first event. */
export async function* walkFile(file: AofFile, firstSeq: number): AsyncGenerator<WalkGroup> {
  const window = await ByteWindow.open(nodeFileSystem, file.path, file.name);
  const framer = new GroupFramer(false); // `check` verifies; this walk also locates damage it found
  framer.begin(window);
  const bad = (at: number, what: string) =>
    new Error(`${file.name}: ${what} at byte offset ${at}; run \`appendonly check\` on this log first`);
  let seq = firstSeq;
  let records: WalkRecord[] = [];
  let envelope: WalkEnvelope | undefined;
  try {
    while (true) {
      let r: number;
      try {
        r = framer.next();
        if (r === REFILL) await framer.refill();
      } catch (err) {
        if (err instanceof CorruptLogError) throw bad(err.offset, `expected ${err.expected}`);
        throw err;
      }
      if (r === COMMAND) {
        const sc = framer.sc;
        const buf = window.buf;
        const type = utf8(buf, sc.argStart[0], sc.argEnd[0]);
        records.push({ start: window.base + framer.commandAt, end: window.base + sc.end, type });
      } else if (r === ENVELOPE) {
        const sc = framer.sc;
        let value: Envelope;
        try {
          value = decodeEnvelope(window.buf, sc);
        } catch {
          throw bad(window.base + framer.commandAt, 'a malformed @env record');
        }
        envelope = { start: window.base + framer.commandAt, end: window.base + sc.end, value };
      } else if (r === GROUP) {
        const { start, end, crcAt, multi, ownTs, lastTs } = framer;
        const ts = ownTs < 0 ? null : ownTs;
        const time = lastTs < 0 ? null : lastTs;
        yield envelope === undefined
          ? { start, end, crcAt, seq, ts, time, multi, records }
          : { start, end, crcAt, seq, ts, time, multi, records, envelope };
        seq += records.length;
        records = [];
        envelope = undefined;
      } else if (r === END) {
        break;
      } else if (r === POSITION) {
        // A reaction's consumer position: part of the group's bytes, not an event (no seq). An
        // edit keeps it with what it keeps of the group; the tools carry positions themselves.
      } else if (r !== REFILL) {
        // A #TS line with nothing after it holds no command, as a load sees it.
        if (framer.tornKind === 'ts') break;
        throw bad(framer.tornAt, 'an incomplete record or group');
      }
    }
  } finally {
    await window.close();
  }
}

/**
 * Walks every incr file of a log in order, giving each its first sequence number as a replay
 * does (the manifest's `startseq`, else where the previous file ended).
 */
export async function* walkIncrs(
  files: readonly AofFile[],
): AsyncGenerator<{ file: AofFile; index: number; group: WalkGroup }> {
  let next = 1;
  for (let i = 0; i < files.length; i++) {
    const file = files[i];
    if (file.kind === 'base') {
      next = (file.seq ?? 0) + 1;
      continue;
    }
    if (file.seq !== undefined) next = file.seq;
    for await (const group of walkFile(file, next)) {
      next = group.seq + group.records.length;
      yield { file, index: i, group };
    }
  }
}
