import { nodeFileSystem } from '../node-file-system';
import { type LogFile, type ReadSummary, readLog } from '../reader';
import { type RedisCheckResult, redisCheckFile } from '../redis-check';
import { CorruptLogError, TruncatedLogError } from '../../../src/index';
import { walkFile } from './walk';
import type { AofFile } from './log-files';

/*
 * Validity of each file of an AOF log, by two readers that share the store's scanner:
 * redisCheckFile, which computes redis-check-aof's own verdict (so `ok_up_to` and
 * `ok_up_to_line` are the numbers Redis's tool prints for the same bytes), and the store's
 * readLog, which also verifies what Redis cannot see: each group's #CRC and the shape of our
 * records (JSON data, SET arity, a base made of SETs). The last good offset is the smaller of
 * the two, so `--fix` never keeps a group our loader would refuse.
 */

/** The verdict on one file. */
export interface FileVerdict {
  readonly file: AofFile;
  readonly size: number;
  /** redis-check-aof's view. */
  readonly redis: RedisCheckResult;
  /** `ok_up_to_line` as redis-check-aof prints it (lines add up over the files, from 1). */
  readonly redisLine: number;
  /** What the store's reader found, or null when it loads the whole file. */
  readonly ours: { offset: number; readonly message: string; readonly checksum: boolean } | null;
  /** Where the good part ends: everything before this offset loads. */
  readonly goodUpTo: number;
  /** Events and groups read (up to the damage). */
  readonly valid: boolean;
}

/** Checks every file; `onBytes` reports progress in bytes read by the store's reader. */
export async function checkAofFiles(
  files: readonly AofFile[],
  onBytes?: (n: number) => void,
): Promise<FileVerdict[]> {
  const out: FileVerdict[] = [];
  let lines = 1;
  for (let i = 0; i < files.length; i++) {
    const file = files[i];
    const redis = await redisCheckFile(nodeFileSystem, file.path);
    lines += redis.lines;
    const ours = await readOne(file, i === files.length - 1, onBytes);
    // The store names the byte it could not take (a JSON value, an argument count); the good
    // part ends where that byte's command starts, #TS line included, or a cut would leave half of it.
    if (ours !== null) ours.offset = await groupStartAt(file, ours.offset);
    const redisBad = redis.error !== null || redis.okUpTo < redis.size;
    const goodUpTo = Math.min(redisBad ? redis.okUpTo : redis.size, ours?.offset ?? redis.size);
    out.push({
      file,
      size: redis.size,
      redis,
      redisLine: lines,
      ours,
      goodUpTo,
      valid: !redisBad && ours === null,
    });
  }
  return out;
}

/** The start of the group that holds `offset` (the offset itself when no whole group does). */
async function groupStartAt(file: AofFile, offset: number): Promise<number> {
  try {
    for await (const g of walkFile(file, 1)) {
      if (g.start > offset) break;
      if (offset < g.end) return g.start;
    }
  } catch {
    // The bytes stop parsing before a group holds the offset: it is a group start already.
  }
  return offset;
}

async function readOne(
  file: AofFile,
  isLast: boolean,
  onBytes?: (n: number) => void,
): Promise<FileVerdict['ours']> {
  const logFile: LogFile = { name: file.name, path: file.path, kind: file.kind, seq: file.seq };
  const summary: ReadSummary = { lastSeq: 0, sizes: [] };
  try {
    for await (const _batch of readLog(
      [logFile],
      {
        fs: nodeFileSystem,
        loadTruncated: false,
        truncate: async () => {
          throw new Error('check never cuts');
        },
        warn: () => {},
        progress: onBytes,
      },
      summary,
    )) {
      // Only the verdict matters here.
    }
    return null;
  } catch (err) {
    if (err instanceof TruncatedLogError) {
      const where = isLast ? '' : ' (and it is not the last file: Redis and appendonly refuse to load it)';
      // Whole records whose #CRC line is torn or missing: a load cuts them, Redis keeps them.
      const checksum = err.message.includes('#CRC');
      const what = checksum
        ? ': the last command has no whole #CRC line, so it is unverified and is cut with it'
        : '';
      return {
        offset: err.offset,
        message: `the file ends in an incomplete record at byte offset ${err.offset}${what}${where}`,
        checksum,
      };
    }
    if (err instanceof CorruptLogError) {
      const own = `${file.name}: `;
      const message = err.message.startsWith(own) ? err.message.slice(own.length) : err.message;
      return { offset: err.offset, message, checksum: err.message.includes('#CRC') };
    }
    throw err;
  }
}
