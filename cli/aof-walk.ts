import * as fs from 'node:fs';
import { ANNOTATION, ERROR, NEED_MORE, RECORD, RespScanner } from '../adapters/aof/index';
import { invalid } from './errors';
import type { AofFile } from './target';

/*
 * The byte layout of an AOF file, group by group, for the commands that edit it in place
 * (truncate, strip). It runs the store's own RespScanner and draws the group boundaries exactly
 * where the store's reader does: a group is an optional `#TS` line, one command or MULTI … EXEC,
 * and an optional `#CRC` line; any other `#` line between groups belongs to no group. Decoding
 * and checksum verification stay in readLog: callers run `check` semantics first (a log that
 * readLog refuses is never edited), so this walker only needs to find offsets.
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
}

const CHUNK = 1024 * 1024;

/** Streams the groups of one file; `firstSeq` is the number of its first event. */
export async function* walkFile(file: AofFile, firstSeq: number): AsyncGenerator<WalkGroup> {
  const fd = fs.openSync(file.path, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    let buf = Buffer.allocUnsafe(CHUNK);
    let base = 0;
    let fill = 0;
    let pos = 0;
    const sc = new RespScanner();
    let seq = firstSeq;
    let lastTs: number | null = null;
    // The group being assembled.
    let start = -1;
    let ownTs: number | null = null;
    let multi = false;
    let inMulti = false;
    let complete = false;
    let records: WalkRecord[] = [];
    const ready: WalkGroup[] = [];
    const bad = (at: number, what: string) =>
      invalid(`${file.name}: ${what} at byte offset ${at}; run \`appendonly check\` on this log first`);
    const emit = (end: number, crcAt: number): void => {
      ready.push({ start, end, crcAt, seq, ts: ownTs, time: lastTs, multi, records });
      seq += records.length;
      start = -1;
      ownTs = null;
      multi = false;
      complete = false;
      records = [];
    };
    while (true) {
      const r = sc.scan(buf, pos, fill);
      if (r === NEED_MORE) {
        if (base + fill < size) {
          // Keep the item being scanned; offsets of the group are absolute, so nothing else is needed.
          const need = sc.needUpTo - pos;
          const target = need > buf.length ? Buffer.allocUnsafe(Math.max(need, buf.length * 2)) : buf;
          buf.copy(target, 0, pos, fill);
          buf = target;
          base += pos;
          fill -= pos;
          pos = 0;
          fill += fs.readSync(fd, buf, fill, buf.length - fill, base + fill);
          continue;
        }
        if (complete) emit(base + pos, -1);
        if (pos < fill || inMulti || records.length > 0)
          throw bad(base + pos, 'an incomplete record or group');
        break;
      }
      if (r === ERROR) throw bad(base + sc.errorAt, `expected ${sc.expected}`);
      const at = base + pos;
      if (r === RECORD) {
        const type = buf.toString('utf8', sc.argStart[0], sc.argEnd[0]);
        const isMulti = sc.argc === 1 && type === 'MULTI';
        const isExec = sc.argc === 1 && type === 'EXEC';
        if (complete) emit(at, -1);
        if (start < 0) start = at;
        if (isMulti) {
          if (inMulti) throw bad(at, 'MULTI inside MULTI');
          inMulti = multi = true;
        } else if (isExec) {
          if (!inMulti) throw bad(at, 'EXEC without MULTI');
          inMulti = false;
          complete = true;
        } else {
          records.push({ start: at, end: base + sc.end, type });
          if (!inMulti) complete = true;
        }
      } else if (r === ANNOTATION) {
        const text = buf.toString('latin1', sc.argStart[0], sc.argEnd[0]);
        if (text.length === 12 && text.startsWith('CRC:')) {
          if (!complete) throw bad(at, 'a #CRC line with no group before it');
          emit(base + sc.end, at);
        } else {
          if (complete) emit(at, -1);
          if (!inMulti && records.length === 0 && !multi) {
            const ts = text.startsWith('TS:') ? Number(text.slice(3)) : Number.NaN;
            if (Number.isSafeInteger(ts) && ts >= 0) {
              start = at;
              ownTs = ts;
              lastTs = ts;
            } else {
              start = -1;
              ownTs = null;
            }
          }
        }
      }
      pos = sc.end;
      while (ready.length > 0) yield ready.shift()!;
    }
    while (ready.length > 0) yield ready.shift()!;
  } finally {
    fs.closeSync(fd);
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
