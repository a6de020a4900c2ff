import { CorruptLogError, TruncatedLogError } from '../../src/index';
import type { ReplayRecord } from '../../src/store/replay-batch';
import { ByteWindow } from './byte-window';
import type { FileSystem } from './file-system';
import { COMMAND, END, ENVELOPE, GROUP, GroupFramer, POSITION, REFILL } from './group-framer';
import type { LoggedPosition } from './record-codec';
import { RecordDecoder } from './record-decoder';
import { wholeCrcLineAfter } from './torn-tail';

/** A log file to replay, in manifest order. */
export interface LogFile {
  /** The name shown in errors and warnings. */
  readonly name: string;
  readonly path: string;
  /** A base yields a snapshot (its SET records are the entries); an incr yields groups. */
  readonly kind: 'base' | 'incr';
  /** Base: the last sequence number it covers. Incr: the number of its first event, if known. */
  readonly seq?: number;
  /** Base: the projections version the manifest records for it (absent: unversioned). */
  readonly projectionsVersion?: string;
  /** Incr: start reading at this offset, where a group starts (`seq` is then that group's). */
  readonly startOffset?: number;
  /** With `startOffset`: the `#TS` clock in effect there, in seconds (-1: none). */
  readonly startTs?: number;
}

/** How the reader treats an incomplete last record. */
export interface ReadOptions {
  readonly fs: FileSystem;
  /** true: cut it (calling `truncate`) and warn; false: throw {@link TruncatedLogError}. */
  readonly loadTruncated: boolean;
  /** Cuts the last file at `offset` (the store does it through its writer's descriptor). */
  readonly truncate: (file: LogFile, offset: number) => Promise<void>;
  readonly warn: (message: string) => void;
  /** Called with bytes consumed, for progress reports. */
  readonly progress?: (bytes: number) => void;
  readonly chunkSize?: number;
  /**
   * Yield a command of one SET (outside MULTI, in an incr file) as a `ReplaySet` rather than a
   * one-event group (the store's replay: no event objects for most of a log). Tools that want
   * every group as events leave it off.
   */
  readonly setRecords?: boolean;
  /** Records per yielded batch (default 4096): a reader that stops early (a page) asks for fewer. */
  readonly batchRecords?: number;
}

/** What a read found, available once the iteration is over. */
export interface ReadSummary {
  /** The last sequence number seen (the base's, or the last event's). */
  lastSeq: number;
  /** The size of each file as it is after the read (the last one possibly cut). */
  readonly sizes: number[];
  /** The last consumer position each reaction's consumer logged (`@pos`), in whole groups; set at the end. */
  positions?: ReadonlyMap<string, LoggedPosition>;
}

/** Records per yielded batch. */
const BATCH = 4096;
/**
 * SET bytes decoded at once by the decoder's SetBatch. Small enough that the text and what it
 * parses to stay in the CPU cache (measured: a 200 KB text parsed 25 % slower per record than 16
 * to 32 KB).
 */
const SET_BATCH_BYTES = 16 * 1024;

/**
 * Streams base then incr files, yielding batches of ReplayRecord: each file through a
 * {@link ByteWindow}, its groups drawn by the {@link GroupFramer}, its records built by the
 * {@link RecordDecoder}. Memory stays bounded: one chunk of the file, plus the group being
 * assembled, plus one batch.
 *
 * Only the last file may end inside a group (a torn write); it is cut where the last whole group
 * ends, or refused with {@link TruncatedLogError}. A batch is yielded as soon as its SETs are
 * decoded, so the state applies what is still in the CPU cache.
 */
export async function* readLog(
  files: readonly LogFile[],
  options: ReadOptions,
  summary: ReadSummary,
): AsyncGenerator<ReplayRecord[], void, undefined> {
  const chunk = options.chunkSize ?? 1024 * 1024;
  const batchRecords = options.batchRecords ?? BATCH;
  const framer = new GroupFramer();
  const decoder = new RecordDecoder(options.setRecords === true);
  for (let f = 0; f < files.length; f++) {
    const file = files[f];
    decoder.beginFile(file);
    const window = await ByteWindow.open(options.fs, file.path, file.name, chunk, options.progress);
    // A read from a sparse index point: the window's first byte is that group's.
    if (file.startOffset !== undefined) window.base = Math.min(file.startOffset, window.size);
    let cutAt = -1;
    try {
      framer.begin(window);
      if (file.startTs !== undefined) framer.lastTs = file.startTs;
      while (true) {
        const r = framer.next();
        if (r === COMMAND) {
          decoder.command(framer);
        } else if (r === GROUP) {
          decoder.endGroup(framer);
          const n = decoder.batch.length;
          if (n >= batchRecords || (n > 0 && decoder.pendingBytes >= SET_BATCH_BYTES)) yield decoder.take();
        } else if (r === REFILL) {
          await framer.refill();
          if (decoder.batch.length >= batchRecords) yield decoder.take();
        } else if (r === END) {
          break;
        } else if (r === ENVELOPE) {
          decoder.envelopeRecord(framer);
        } else if (r === POSITION) {
          decoder.positionRecord(framer);
        } else {
          decoder.dropGroup();
          cutAt = await tornTail(framer, window, f === files.length - 1, options);
          break;
        }
      }
      decoder.flush();
    } catch (err) {
      throw decoder.firstError(err);
    } finally {
      await window.close();
    }
    let size = window.size;
    if (cutAt >= 0) {
      const why = framer.tornKind === 'crc' ? CRC_TORN : '';
      options.warn(
        `${file.name}: the log ends in an incomplete record (short read); cutting it at byte offset ${cutAt} (${size - cutAt} bytes removed)${why}`,
      );
      await options.truncate(file, cutAt);
      size = cutAt;
    }
    summary.lastSeq = decoder.lastSeq;
    summary.sizes.push(size);
  }
  if (decoder.batch.length > 0) yield decoder.take();
  summary.positions = decoder.positions;
}

/** Why a whole command is cut: said in the warning and in {@link TruncatedLogError}. */
const CRC_TORN = '; the last command has no whole #CRC line, so it is unverified and is cut with it';

/**
 * The file ends inside a group: where to cut (-1: nothing to cut), or why not. Only the last file
 * may be torn; a short read followed by a whole `#CRC` line is a damaged length, not a torn write.
 */
async function tornTail(
  framer: GroupFramer,
  window: ByteWindow,
  isLast: boolean,
  options: ReadOptions,
): Promise<number> {
  const at = framer.tornAt;
  const kind = framer.tornKind;
  if (!isLast) {
    if (kind === 'ts') return -1; // a #TS line with no command: nothing is lost by ignoring it
    throw new CorruptLogError(
      window.name,
      at,
      'a complete record',
      kind === 'crc'
        ? 'the file ends before the #CRC line of its last command, and only the last file of the log may'
        : 'the file ends inside a record, and only the last file of the log may',
    );
  }
  if (kind === 'records') {
    const later = await wholeCrcLineAfter(window, at);
    if (later >= 0) {
      throw new CorruptLogError(
        window.name,
        at,
        'a record length that fits in the file',
        `the record here announces more bytes than the file holds, yet a complete group ends after it, at byte offset ${later}: a length was damaged, the file was not torn`,
      );
    }
  }
  if (!options.loadTruncated) {
    const why = kind === 'crc' ? `${CRC_TORN.slice(2)}; ` : '';
    throw new TruncatedLogError(
      window.name,
      at,
      `${why}set loadTruncated: true to cut it, or repair the log (appendonly check --fix)`,
    );
  }
  return at;
}

/**
 * The consumers' positions the reactions of `files` logged (`@pos`), the last per consumer, read
 * without changing anything: a torn tail is left as it is, and its group's position does not
 * count. For readers that do not replay (a tool's store, `appendonly consumers`).
 */
export async function readLoggedPositions(
  fs: FileSystem,
  files: readonly LogFile[],
): Promise<ReadonlyMap<string, LoggedPosition>> {
  const summary: ReadSummary = { lastSeq: 0, sizes: [] };
  const reading = readLog(
    files,
    { fs, loadTruncated: true, truncate: async () => {}, warn: () => {} },
    summary,
  );
  while (!(await reading.next()).done);
  return summary.positions ?? new Map();
}
