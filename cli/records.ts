import * as fs from 'node:fs';
import { type LogFile, nodeFileSystem, type ReadSummary, readLog } from '../adapters/aof/index';
import { replayDatabase } from '../adapters/sqlite-wal/replay';
import type { SqliteWalStore } from '../adapters/sqlite-wal/store';
import { StoreLockedError } from '../src/index';
import type { ReplayRecord } from '../src/store/replay-batch';
import { invalid } from './errors';
import { note, progress } from './output';
import { lockSqlite } from './sqlite-tools';
import { storeFor, toolContext } from './stores';
import type { Target } from './target';

/*
 * The records of a log, read by the store's own reader and never repaired: the read-only
 * commands (info, cat, convert's source, rewrite's type scan) must leave the log as they found
 * it. An AOF log is read file by file with readLog, without the lock, as redis-check-aof does;
 * a torn tail is reported, not cut. A SQLite store is read through SqliteWalStore's reader, after
 * checking that its open would find nothing to cut.
 */

/** Streams the records of `target`, with a progress report on stderr. */
export async function* readRecords(
  target: Target,
  label = 'reading',
): AsyncGenerator<readonly ReplayRecord[]> {
  if (target.kind === 'aof') {
    const files: LogFile[] = target.files.map((f) => ({
      name: f.name,
      path: f.path,
      kind: f.kind,
      seq: f.seq,
    }));
    const total = target.files.reduce((n, f) => n + fs.statSync(f.path).size, 0);
    const bar = progress(label, total);
    let done = 0;
    const summary: ReadSummary = { lastSeq: 0, sizes: [] };
    try {
      yield* readLog(
        files,
        {
          fs: nodeFileSystem,
          loadTruncated: true,
          // Read-only: the torn tail is skipped as a load would, but left in the file.
          truncate: async () => {},
          warn: (m) =>
            note(
              `warning: ${m.replace(/; cutting it at/, '; ignoring it from')} (run \`appendonly check --fix\` to cut it)`,
            ),
          progress: (n) => {
            done += n;
            bar.update(done);
          },
        },
        summary,
      );
    } finally {
      bar.stop();
    }
    return;
  }
  const probe = lockSqlite(target.file, 'read the store');
  try {
    const snapshotSeq = Number(
      probe.prepare("SELECT value FROM meta WHERE key = 'snapshot_seq'").pluck().get() ?? 0,
    );
    const maxSeq = Number(probe.prepare('SELECT max(seq) FROM events').pluck().get() ?? snapshotSeq);
    const head = probe.prepare('SELECT seq, n FROM events WHERE n > 0 ORDER BY seq DESC LIMIT 1').get() as
      | { seq: number; n: number }
      | undefined;
    if (head !== undefined && head.seq + head.n - 1 > maxSeq) {
      throw invalid(
        `${target.file} ends inside the command at seq ${head.seq}: run \`appendonly check ${target.file} --fix\` first`,
      );
    }
  } finally {
    probe.close();
  }
  const store = storeFor(target) as SqliteWalStore;
  try {
    await store.open(toolContext());
  } catch (err) {
    if (err instanceof StoreLockedError) throw invalid(err.message);
    throw err;
  }
  try {
    yield* replayDatabase(store.database, target.file, toolContext().logger, { rowsRead: 0 });
  } finally {
    await store.close();
  }
}
