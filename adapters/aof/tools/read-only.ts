import * as fs from 'node:fs';
import type { ReplayRecord } from '../../../src/store/replay-batch';
import { nodeFileSystem } from '../node-file-system';
import { type LogFile, type ReadSummary, readLog } from '../reader';
import type { AofLog } from './log-files';

/** What a read-only read reports as it goes. */
export interface ReadOnlyHooks {
  /** A torn tail was found: skipped as a load would skip it, but left in the file. */
  readonly warn: (message: string) => void;
  /** Bytes read since the last call. */
  readonly progress: (bytes: number) => void;
}

/** Bytes of the log's files, for a progress report of a whole read. */
export function logSize(log: AofLog): number {
  return log.files.reduce((n, f) => n + fs.statSync(f.path).size, 0);
}

/**
 * The records of the log, read by the store's own reader without the lock and never repaired,
 * as redis-check-aof reads: a torn tail is skipped exactly as a load with `loadTruncated` skips
 * it (so the records are the ones a store would load), but the file keeps its bytes.
 */
export async function* readLogReadOnly(
  log: AofLog,
  hooks: ReadOnlyHooks,
): AsyncGenerator<readonly ReplayRecord[]> {
  const files: LogFile[] = log.files.map((f) => ({
    name: f.name,
    path: f.path,
    kind: f.kind,
    seq: f.seq,
    projectionsVersion: f.projectionsVersion,
  }));
  const summary: ReadSummary = { lastSeq: 0, sizes: [] };
  yield* readLog(
    files,
    {
      fs: nodeFileSystem,
      loadTruncated: true,
      truncate: async () => {},
      // The reader speaks for a load, which cuts; this read does not.
      warn: (m) => hooks.warn(m.replace(/; cutting it at/, '; ignoring it from')),
      progress: hooks.progress,
    },
    summary,
  );
}
