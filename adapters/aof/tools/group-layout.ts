import type { Envelope } from '../record-codec';
import type { AofFile } from './log-files';

/*
 * The byte layout of an AOF file, group by group, as the tools that edit a file in place need
 * it (truncate, strip). A group is an optional `#TS` line, one command or MULTI … EXEC, and an
 * optional `#CRC` line, exactly as the store's reader draws its boundaries. The tools take the
 * groups from a walker given by the caller (today cli/aof-walk.ts, which runs the store's
 * RespScanner), and run only on a log the reader loads whole: they need offsets, not verdicts.
 */

/** One event record inside a group. */
export interface RecordLayout {
  /** File offsets of the record's bytes, `*` to the last CRLF. */
  readonly start: number;
  readonly end: number;
  /** The command name or event type (the first argument). */
  readonly type: string;
}

/** One command's group, with absolute file offsets. */
export interface GroupLayout {
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
  readonly records: readonly RecordLayout[];
  /** Its `@env` record, if it has one: strip rewrites it when it removes some of the group's events. */
  readonly envelope?: { readonly start: number; readonly end: number; readonly value: Envelope };
}

/** A group of an incr file of the log, with the file and its index in the log's files. */
export interface LogGroup {
  readonly file: AofFile;
  readonly index: number;
  readonly group: GroupLayout;
}

/** Streams the groups of one file, numbering its events from `firstSeq`. */
export type WalkFile = (file: AofFile, firstSeq: number) => AsyncIterable<GroupLayout>;
