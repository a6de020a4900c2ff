import * as path from 'node:path';
import { ByteWindow } from './byte-window';
import type { FileSystem } from './file-system';
import { parseManifest } from './manifest';
import { W_EXEC, W_MULTI } from './record-codec';
import { ANNOTATION_MAX_LEN, bytesEqualIgnoreCase, ERROR, NEED_MORE, RespScanner } from './resp';

/**
 * The verdict of redis-check-aof's checkSingleAof on one file, computed the same way, so that
 * `appendonly check` reports the same `ok_up_to` and `ok_up_to_line` as `redis-check-aof`:
 *
 * - `okUpTo` is the start of the first item (record or `#` line) that does not parse, and it does
 *   not move inside MULTI … EXEC: a MULTI cut short is cut whole;
 * - lines are the CRLFs consumed by the RESP parser (annotations are not counted), including
 *   those of the record that failed;
 * - MULTI and EXEC are recognised ignoring case; a nested MULTI or a lone EXEC stops the check.
 *
 * It does not know about our checksums; {@link readLog} checks those.
 */
export interface RedisCheckResult {
  readonly size: number;
  readonly okUpTo: number;
  /** CRLFs consumed in this file (redis-check-aof adds these up over the files, starting at 1). */
  readonly lines: number;
  /** What stopped the check, or null when the whole file is valid. */
  readonly error: { readonly offset: number; readonly message: string } | null;
}

/**
 * Checks one file as redis-check-aof does, streaming it through a {@link ByteWindow}. Its own
 * loop, not the GroupFramer's: it reproduces another program's verdict (case-insensitive MULTI,
 * `fgets` lines of at most 1023 bytes, no checksums), and must disagree with ours where Redis does.
 */
export async function redisCheckFile(
  fs: FileSystem,
  path: string,
  chunkSize = 1024 * 1024,
): Promise<RedisCheckResult> {
  const w = await ByteWindow.open(fs, path, path, chunkSize);
  try {
    return await check(w);
  } finally {
    await w.close();
  }
}

async function check(w: ByteWindow): Promise<RedisCheckResult> {
  const size = w.size;
  const sc = new RespScanner();
  let okUpTo = 0;
  let lines = 0;
  let multi = 0;
  let p = 0;
  let error: { offset: number; message: string } | null = null;
  const stop = (offset: number, message: string) => {
    error = { offset, message };
  };
  while (true) {
    if (multi === 0) okUpTo = w.base + p;
    if (w.base + p >= size) break;
    if (p >= w.fill) {
      p -= await w.refill(p, p + 1);
      continue;
    }
    const buf = w.buf;
    if (buf[p] === 35) {
      // fgets(buf, 1024): up to the newline, or 1023 bytes, or the end of the file.
      let nl = buf.indexOf(10, p);
      while ((nl < 0 || nl >= w.fill) && w.fill - p < ANNOTATION_MAX_LEN - 1 && !w.atEnd) {
        p -= await w.refill(p, p + ANNOTATION_MAX_LEN);
        nl = w.buf.indexOf(10, p);
      }
      if (nl >= 0 && nl < w.fill && nl - p < ANNOTATION_MAX_LEN - 1) p = nl + 1;
      else p = Math.min(w.fill, p + ANNOTATION_MAX_LEN - 1);
      continue;
    }
    if (buf[p] !== 42) {
      stop(w.base + p, 'format error: expected a record');
      break;
    }
    const r = sc.scan(buf, p, w.fill);
    if (r === NEED_MORE && !w.atEnd) {
      p -= await w.refill(p, sc.needUpTo);
      continue;
    }
    lines += sc.lines;
    if (r === ERROR) {
      stop(w.base + sc.errorAt, `expected ${sc.expected}`);
      break;
    }
    if (r === NEED_MORE) {
      stop(w.base + w.fill, 'unexpected end of file inside a record');
      break;
    }
    const s = sc.argStart[0];
    const e = sc.argEnd[0];
    if (bytesEqualIgnoreCase(buf, s, e, W_MULTI)) {
      if (multi++ > 0) {
        stop(w.base + p, 'unexpected MULTI');
        break;
      }
    } else if (bytesEqualIgnoreCase(buf, s, e, W_EXEC)) {
      if (--multi !== 0) {
        stop(w.base + p, 'unexpected EXEC');
        break;
      }
    }
    p = sc.end;
  }
  if (error === null && multi !== 0)
    error = { offset: size, message: 'reached EOF before reading EXEC for MULTI' };
  return { size, okUpTo, lines, error };
}

/** One file of a multi-part check, with the line number redis-check-aof prints for it. */
export interface RedisCheckFileResult extends RedisCheckResult {
  readonly name: string;
  readonly type: 'base' | 'incr';
  /** redis-check-aof's `ok_up_to_line`: its line counter runs on across the files, from 1. */
  readonly okUpToLine: number;
  /** Only the last file may be cut by `--fix`. */
  readonly last: boolean;
}

/**
 * Checks every file a manifest names, base first, as `redis-check-aof <manifest>` does; stops
 * at the first file that is not valid (redis-check-aof exits there too). An empty file is
 * valid and not analysed.
 */
export async function redisCheckManifest(
  fs: FileSystem,
  manifestPath: string,
): Promise<RedisCheckFileResult[]> {
  const dir = path.dirname(manifestPath);
  const m = parseManifest(await fs.readFile(manifestPath), manifestPath);
  const files = [
    ...(m.base ? [{ name: m.base.name, type: 'base' as const }] : []),
    ...m.incrs.map((e) => ({ name: e.name, type: 'incr' as const })),
  ];
  const out: RedisCheckFileResult[] = [];
  let line = 1;
  for (let i = 0; i < files.length; i++) {
    const r = await redisCheckFile(fs, path.join(dir, files[i].name));
    line += r.lines;
    out.push({ ...r, ...files[i], okUpToLine: line, last: i === files.length - 1 });
    if (r.okUpTo !== r.size) break;
  }
  return out;
}
