import type { SqliteDatabase, SqliteStatement } from './driver';
import { PersistenceError, type SnapshotSource, type StateSnapshot } from '../../src/index';
import { inSlices } from './chunked';
import { AUTOCHECKPOINT_PAGES, EVENT_COLUMNS } from './database';
import type { GroupWriter } from './group-writer';
import { writeProjectionsVersion } from './replay';

/** What a compaction needs from its store. */
export interface CompactionDeps {
  readonly db: SqliteDatabase;
  readonly file: string;
  readonly writer: GroupWriter;
  readonly snapshots: SnapshotSource;
  readonly keepHistory: boolean;
}

/**
 * Rewrites the log as the state's snapshot, without stalling commands (docs/ARCHITECTURE.md).
 *
 * 1. The snapshot is taken synchronously on entry: every group appended so far is committed or
 *    in the pending batch, which commits before any later append, so the snapshot covers
 *    exactly the groups up to its `seq`.
 * 2. Its entries are staged into `snapshot_next` in slices of a few ms, each its own transaction;
 *    appends commit between slices.
 * 3. A short transaction swaps `snapshot_next` in and moves `meta.snapshot_seq` to the snapshot's
 *    seq (and `meta.projections_version` to its version: see `readProjectionsVersion`). Replay
 *    reads events above `snapshot_seq` only, so from this commit on, the events the
 *    snapshot covers are dead weight; before it, the old snapshot and events are intact. A crash
 *    at any moment loads the same state.
 * 4. The covered events (or, with `keepHistory`, moves them to `events_history`) and the old
 *    snapshot are deleted in slices, freed pages are given back to the file system, and the WAL
 *    is truncated.
 *
 * If an append fails while it runs, the compaction aborts before the swap: the snapshot would
 * include groups that were rejected.
 *
 * SQLite's automatic checkpoint is off while it runs: it would copy a thousand pages (~15 ms)
 * inside whichever commit crossed the threshold. Instead a passive checkpoint runs as a slice of
 * its own after each step, bounded by the pages that step wrote, so no command waits much more
 * than one slice. Checkpoints keep the policy's `synchronous`, so synced frames are never
 * overwritten before the database pages they hold are synced.
 */
export async function compactDatabase(deps: CompactionDeps): Promise<{ seq: number; keys: number }> {
  const { db, writer } = deps;
  const snapshot = deps.snapshots.takeSnapshot();
  const generation = writer.failures;
  const check = () => {
    if (writer.failures !== generation) {
      throw new PersistenceError(
        `compaction of ${deps.file} aborted: a write failed while it ran`,
        writer.error?.code,
        { cause: writer.error },
      );
    }
  };
  const checkpoint = () => db.pragma('wal_checkpoint(PASSIVE)');
  db.pragma('wal_autocheckpoint = 0');
  try {
    return await compactWith(deps, snapshot, check, checkpoint);
  } finally {
    snapshot.release();
    if (db.open) db.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_PAGES}`);
  }
}

async function compactWith(
  deps: CompactionDeps,
  snapshot: StateSnapshot,
  check: () => void,
  checkpoint: () => void,
): Promise<{ seq: number; keys: number }> {
  const { db, writer } = deps;
  let keys = 0;
  try {
    await dropInSlices(db, 'snapshot_old', check, checkpoint);
    await dropInSlices(db, 'snapshot_next', check, checkpoint);
    db.exec('CREATE TABLE snapshot_next (key TEXT NOT NULL, value TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO snapshot_next (key, value) VALUES (?, ?)');
    const entries = snapshot.entries();
    const stage = db.transaction((limit: number) => {
      let n = 0;
      for (; n < limit; n++) {
        const next = entries.next();
        if (next.done) break;
        insert.run(next.value[0], JSON.stringify(next.value[1]));
      }
      return n;
    });
    keys = await inSlices(stage, check, 500, checkpoint);
    // Everything up to snapshot.seq must be committed before the swap says it is covered.
    writer.flush();
    check();
    db.transaction(() => {
      db.exec('ALTER TABLE snapshot RENAME TO snapshot_old; ALTER TABLE snapshot_next RENAME TO snapshot');
      db.prepare("UPDATE meta SET value = ? WHERE key = 'snapshot_seq'").run(snapshot.seq);
      writeProjectionsVersion(db, snapshot.seq, snapshot.projectionsVersion);
    })();
  } finally {
    // The entries were all read: the state can merge its copy-on-write overlay back now.
    snapshot.release();
  }
  const none = () => {};
  await dropCovered(deps, snapshot.seq, checkpoint);
  await dropInSlices(db, 'snapshot_old', none, checkpoint);
  await inSlices(
    (limit) => {
      const free = Number(db.pragma('freelist_count', { simple: true }));
      if (free === 0) return 0;
      db.exec(`PRAGMA incremental_vacuum(${limit})`);
      return Math.min(free, limit);
    },
    none,
    32,
    checkpoint,
  );
  db.pragma('wal_checkpoint(TRUNCATE)');
  return { seq: snapshot.seq, keys };
}

/** Deletes (or moves to history) the events at or below `seq`, a primary-key range per slice. */
async function dropCovered(deps: CompactionDeps, seq: number, checkpoint: () => void): Promise<void> {
  const { db } = deps;
  const first = db.prepare('SELECT min(seq) FROM events').pluck();
  const remove = db.prepare('DELETE FROM events WHERE seq BETWEEN ? AND ?');
  let keep: SqliteStatement | null = null;
  if (deps.keepHistory) {
    db.exec(`CREATE TABLE IF NOT EXISTS events_history (${EVENT_COLUMNS})`);
    keep = db.prepare('INSERT OR REPLACE INTO events_history SELECT * FROM events WHERE seq BETWEEN ? AND ?');
  }
  const step = db.transaction((limit: number) => {
    const low = first.get() as number | null;
    if (low === null || low > seq) return 0;
    const high = Math.min(seq, low + limit - 1);
    keep?.run(low, high);
    remove.run(low, high);
    return high - low + 1;
  });
  await inSlices(step, () => {}, 500, checkpoint);
}

/** Empties `table` in slices, then drops it (a DROP of a big table would stall commands). */
async function dropInSlices(
  db: SqliteDatabase,
  table: string,
  check: () => void,
  checkpoint: () => void,
): Promise<void> {
  const exists = db
    .prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?")
    .pluck()
    .get(table);
  if (exists === undefined) return;
  const remove = db.prepare(`DELETE FROM ${table} WHERE rowid IN (SELECT rowid FROM ${table} LIMIT ?)`);
  await inSlices((limit) => remove.run(limit).changes, check, 500, checkpoint);
  db.exec(`DROP TABLE ${table}`);
}
