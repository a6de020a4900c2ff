import type { SqliteDatabase, SqliteStatement } from './driver';
import { PersistenceError, type SnapshotSource, type StateSnapshot } from '../../src/index';
import type { RetentionPlan } from '../../src/kit/index';
import { inSlices } from './chunked';
import { AUTOCHECKPOINT_PAGES, EVENT_COLUMNS } from './database';
import type { GroupWriter } from './group-writer';
import { hasHistory, writeProjectionsVersion } from './replay';

/** What a compaction needs from its store. */
export interface CompactionDeps {
  readonly db: SqliteDatabase;
  readonly file: string;
  readonly writer: GroupWriter;
  readonly snapshots: SnapshotSource;
  readonly keepHistory: boolean;
  /** What to keep for consumers once the snapshot covers `seq` (stale marks stored first). */
  retain(seq: number): Promise<RetentionPlan>;
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
 * 4. The covered events are deleted (moved to `events_history`, with `keepHistory`; those a
 *    consumer has not handled are moved there too, and the ones every consumer has passed are
 *    deleted from it: see `src/kit/retention.ts`) and the old snapshot is deleted, in slices, freed pages are given back to the file system, and the WAL
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
  const keepAfter = deps.keepHistory ? 0 : groupStartBefore(db, (await deps.retain(snapshot.seq)).keepAfter);
  await dropCovered(deps, snapshot.seq, keepAfter, checkpoint);
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

/**
 * `keepAfter` moved back to the row before the head of the group holding `keepAfter + 1`, so that
 * what is kept starts with a whole group (a consumer's position may fall inside one); null stays.
 */
function groupStartBefore(db: SqliteDatabase, keepAfter: number | null): number | null {
  if (keepAfter === null) return null;
  const head = db
    .prepare(
      `SELECT max(seq) FROM (SELECT seq, n FROM events WHERE seq <= ? UNION ALL SELECT seq, n FROM ${
        hasHistory(db) ? 'events_history' : 'events'
      } WHERE seq <= ?) WHERE n > 0`,
    )
    .pluck()
    .get(keepAfter + 1, keepAfter + 1) as number | null;
  return head === null ? keepAfter : Math.min(keepAfter, head - 1);
}

/**
 * Deletes the events at or below `seq`, a primary-key range per slice; those after `keepAfter`
 * move to `events_history` instead (0 with `keepHistory`: all of them). Without `keepHistory`,
 * the rows of `events_history` at or below `keepAfter` (all of them, when it is null: no
 * consumer is behind) are deleted too, so that the table holds one run of seqs ending at `seq`.
 */
async function dropCovered(
  deps: CompactionDeps,
  seq: number,
  keepAfter: number | null,
  checkpoint: () => void,
): Promise<void> {
  const { db } = deps;
  const moveAfter = keepAfter ?? seq;
  const first = db.prepare('SELECT min(seq) FROM events').pluck();
  const remove = db.prepare('DELETE FROM events WHERE seq BETWEEN ? AND ?');
  let keep: SqliteStatement | null = null;
  if (moveAfter < seq) {
    db.exec(`CREATE TABLE IF NOT EXISTS events_history (${EVENT_COLUMNS})`);
    keep = db.prepare('INSERT OR REPLACE INTO events_history SELECT * FROM events WHERE seq BETWEEN ? AND ?');
  }
  const step = db.transaction((limit: number) => {
    const low = first.get() as number | null;
    if (low === null || low > seq) return 0;
    const high = Math.min(seq, low + limit - 1);
    if (high > moveAfter) keep?.run(Math.max(low, moveAfter + 1), high);
    remove.run(low, high);
    return high - low + 1;
  });
  await inSlices(step, () => {}, 500, checkpoint);
  if (deps.keepHistory || !hasHistory(db)) return;
  const oldest = db.prepare('SELECT min(seq) FROM events_history').pluck();
  const removeKept = db.prepare('DELETE FROM events_history WHERE seq BETWEEN ? AND ?');
  await inSlices(
    db.transaction((limit: number) => {
      const low = oldest.get() as number | null;
      if (low === null || low > moveAfter) return 0;
      const high = Math.min(moveAfter, low + limit - 1);
      removeKept.run(low, high);
      return high - low + 1;
    }),
    () => {},
    500,
    checkpoint,
  );
}

/**
 * Bytes of the pages of `events_history` (SQLite's dbstat table), 0 without the table or without
 * dbstat: the kept events are in the database file, but not part of the size the trigger reads.
 */
export function historyBytes(db: SqliteDatabase): number {
  if (!hasHistory(db)) return 0;
  try {
    return Number(
      db.prepare("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'events_history'").pluck().get() ??
        0,
    );
  } catch {
    return 0;
  }
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
