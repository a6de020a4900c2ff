import * as fs from 'node:fs';
import type { LogPoint } from '../../common/log-point';
import type { LogGroup } from './group-layout';
import { type AofFile, type AofLog, saveManifest } from './log-files';

/*
 * Point-in-time recovery on an AOF log: keep every command up to the point, drop the rest,
 * whole commands only. By time, as redis-check-aof's `--truncate-to-timestamp`, the cut is at
 * the first `#TS` annotation later than the point. Unlike Redis the cut may fall in any incr
 * file: the files after it leave the manifest. The base holds the commands before it only as
 * state, so a point before the base cannot be reached.
 */

/** What truncating at a point would do. */
export type TruncatePlan =
  /** The point `seq` is before the base. */
  | { readonly kind: 'before-base'; readonly seq: number; readonly base: string; readonly baseSeq: number }
  /** The point `seq` is inside the command of events `first` to `last`. */
  | { readonly kind: 'inside-command'; readonly seq: number; readonly first: number; readonly last: number }
  /** A cut by time, but the log has no `#TS` annotation. */
  | { readonly kind: 'no-times' }
  /** Nothing after the point: the log ends at `lastSeq`. */
  | { readonly kind: 'nothing'; readonly lastSeq: number }
  /** Cut `file` at `offset` (dropping `seq` to `lastSeq`) and drop the files after it. */
  | {
      readonly kind: 'cut';
      readonly file: AofFile;
      readonly index: number;
      readonly offset: number;
      readonly seq: number;
      readonly lastSeq: number;
      /** The files after the cut, which leave the manifest. */
      readonly dropped: readonly string[];
      /** Every file the cut changes or removes (for the backup). */
      readonly touches: readonly string[];
    };

/** Plans a truncate of `log` at `point`, from the groups of its incr files in log order. */
export async function planTruncate(
  log: AofLog,
  groups: AsyncIterable<LogGroup>,
  point: LogPoint,
): Promise<TruncatePlan> {
  const baseSeq = log.manifest.base?.lastSeq ?? 0;
  if ('seq' in point && point.seq < baseSeq)
    return { kind: 'before-base', seq: point.seq, base: log.manifest.base!.name, baseSeq };
  let cut: { index: number; offset: number; seq: number } | null = null;
  let sawTs = false;
  let lastSeq = baseSeq;
  for await (const { index, group } of groups) {
    const end = group.seq + group.records.length - 1;
    if (group.ts !== null) sawTs = true;
    if (cut === null) {
      if ('seq' in point) {
        if (group.seq > point.seq) cut = { index, offset: group.start, seq: group.seq };
        else if (end > point.seq)
          return { kind: 'inside-command', seq: point.seq, first: group.seq, last: end };
      } else if (group.ts !== null && group.ts > point.ts) {
        cut = { index, offset: group.start, seq: group.seq };
      }
    }
    lastSeq = end;
  }
  if ('ts' in point && !sawTs) return { kind: 'no-times' };
  if (cut === null) return { kind: 'nothing', lastSeq };
  const file = log.files[cut.index];
  const dropped = log.files.slice(cut.index + 1).map((f) => f.name);
  return { kind: 'cut', file, ...cut, lastSeq, dropped, touches: [file.name, ...dropped] };
}

/**
 * Carries out a `cut` plan; the caller holds the lock and has made a backup. The file is cut in
 * place (the bytes before the cut are never rewritten); only then does the manifest stop naming
 * the files after it, and only once it is durable are they deleted, so a crash at any step
 * leaves a log that loads.
 */
export function truncateLog(log: AofLog, plan: Extract<TruncatePlan, { kind: 'cut' }>): void {
  const fd = fs.openSync(plan.file.path, 'r+');
  try {
    fs.ftruncateSync(fd, plan.offset);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  if (plan.dropped.length === 0) return;
  const keep = new Set(log.files.slice(0, plan.index + 1).map((f) => f.name));
  saveManifest(log, { ...log.manifest, incrs: log.manifest.incrs.filter((e) => keep.has(e.name)) });
  for (const f of log.files.slice(plan.index + 1)) fs.unlinkSync(f.path);
}
