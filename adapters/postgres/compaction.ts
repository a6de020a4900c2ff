import { type JsonValue, LogLostError, PersistenceError, type SnapshotSource } from '../../src/index';
import type { RetentionPlan } from '../../src/kit/index';
import { hold, letGo } from './connection';
import type { PgClientLike, PgPoolLike } from './driver';
import { projectionsVersionKey, projectionsVersionValue, type Tables } from './schema';

/** Snapshot rows per INSERT, and covered events per DELETE: slices, so that commands keep flowing. */
const SLICE = 2000;

/** What a compaction needs from the store. */
export interface CompactionDeps {
  readonly pool: PgPoolLike;
  readonly t: Tables;
  readonly log: string;
  readonly keepHistory: boolean;
  /** What to keep for consumers once the snapshot covers `seq` (stale marks stored first). */
  retain(seq: number): Promise<RetentionPlan>;
  /** Resolves once this instance's appends up to `seq` have committed; rejects if one of them did not. */
  committedThrough(seq: number): Promise<void>;
  /**
   * True when the app's state is exactly its sequence number: no replay running (a catch-up has
   * applied groups before the app's seq moves) and no conflict being resolved.
   */
  steady(): boolean;
  /**
   * The last command this instance applied, with its batch (null: none known), and the writer to
   * suspect when the log no longer holds it (its next append or catch-up checks, and reloads).
   */
  lastApplied(): { readonly seq: number; readonly batch: string } | null;
  suspect(): void;
  /** Names the log in errors. */
  readonly where: string;
}

/**
 * One compaction of the log (any instance may run it; one at a time per log, by an advisory
 * lock on its own connection, so appends never wait behind it):
 *
 * 1. once the lock is held, the app's snapshot is taken (copy-on-write, O(1)). It holds the commands this instance
 *    applied but has not committed yet: it is the log's state at `seq` only once they have all
 *    committed without a conflict, so the compaction waits for that, and gives up otherwise;
 * 2. its entries are written under a new snapshot id, in slices;
 * 3. the head row is switched to the new snapshot (`snapshot_seq`, `snapshot_id`) in one UPDATE,
 *    in the transaction that records its projections version (`projectionsVersionKey`): a
 *    replay reads a snapshot and the events above it in one transaction, so it sees the old
 *    pair or the new, never half of one;
 * 4. the old snapshot's rows and, unless `keepHistory`, the events it covers are deleted, in
 *    slices, but for those a consumer has not handled (`src/kit/retention.ts`): they stay as
 *    rows below `snapshot_seq`, which no replay from the snapshot reads, until a compaction finds
 *    every consumer past them. A compaction that dies at any step leaves a log that loads the same state: before
 *    the switch the new rows are unreferenced (and cleared by the next compaction), after it the
 *    covered events are merely not read.
 */
export async function compactLog(
  deps: CompactionDeps,
  snapshots: SnapshotSource,
): Promise<{ seq: number; keys: number }> {
  const { pool, t, log } = deps;
  const conn = await hold(pool);
  const client = conn.client;
  try {
    // A session lock: a second compaction of the log waits for the first; a holder that dies
    // (SIGKILL, a lost connection) drops it with its session.
    const lockKey = `appendonly compaction ${t.schema}.${log}`;
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
    try {
      return await underLock(deps, client, snapshots);
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]).catch(() => {});
    }
  } finally {
    letGo(conn);
  }
}

/** A snapshot whose commands did not all commit is taken again, this many times at most. */
const ATTEMPTS = 50;
/** How long a compaction waits for the app to settle (no replay, no conflict) before a snapshot. */
const WAIT_MS = 10_000;

async function underLock(
  deps: CompactionDeps,
  client: PgClientLike,
  snapshots: SnapshotSource,
): Promise<{ seq: number; keys: number }> {
  const { t, log } = deps;
  let seq = 0;
  let keys = 0;
  let id = 0;
  let version: string | undefined;
  for (let attempt = 1; ; attempt++) {
    for (const deadline = Date.now() + WAIT_MS; !deps.steady(); ) {
      if (Date.now() > deadline)
        throw new PersistenceError('compaction abandoned: the app never settled', 'EBUSY');
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    // Taken in the same turn as the check: the state and its seq agree.
    const snapshot = snapshots.takeSnapshot();
    try {
      seq = snapshot.seq;
      keys = snapshot.size;
      version = snapshot.projectionsVersion;
      try {
        await deps.committedThrough(seq);
      } catch (err) {
        // A conflict rolled back commands the snapshot holds: once the app has decided them
        // again, a new snapshot (it covers more, never less) is taken.
        if (attempt >= ATTEMPTS) throw err;
        continue;
      }
      const { rows } = await client.query(
        `SELECT snapshot_seq::float8 AS seq, snapshot_id::float8 AS id FROM ${t.heads} WHERE log = $1`,
        [log],
      );
      const current = rows[0] as { seq: number; id: number };
      if (current.seq > seq) return { seq: current.seq, keys };
      id = current.id + 1;
      // Rows of a compaction that died before its switch.
      await client.query(`DELETE FROM ${t.snapshot} WHERE log = $1 AND id >= $2`, [log, id]);
      await writeEntries(client, t, log, id, snapshot.entries());
      break;
    } finally {
      snapshot.release();
    }
  }
  await switchSnapshot(deps, client, seq, id, version);
  await client.query(`DELETE FROM ${t.snapshot} WHERE log = $1 AND id < $2`, [log, id]);
  if (!deps.keepHistory) {
    const { keepAfter } = await deps.retain(seq);
    await deleteCovered(
      client,
      t,
      log,
      keepAfter === null ? seq : await groupStartBefore(client, t, log, keepAfter),
    );
  }
  return { seq, keys };
}

/**
 * Step 3: the head row names the new snapshot, and the meta row its projections version, in one
 * transaction, so that a replay sees both of the old snapshot or both of the new. An unversioned
 * snapshot leaves the meta row as it is: it names another id, so it stands for nothing.
 *
 * Under the head row's lock, the log must still hold what this instance applied last, from the
 * same batch: under `synchronous_commit = off` a database crash drops the last commits, and the
 * instance may not have noticed yet (its connections are checked when next used). A snapshot of
 * such a state would bring lost commands back into every replay, and hide the commands given
 * their sequence numbers again. A crash drops a suffix of the commits, so the last applied batch
 * still being there proves every earlier one is, the snapshot's included.
 */
async function switchSnapshot(
  deps: CompactionDeps,
  client: PgClientLike,
  seq: number,
  id: number,
  version: string | undefined,
): Promise<void> {
  const { t, log } = deps;
  await client.query('BEGIN');
  try {
    const last = deps.lastApplied();
    const at = last !== null && last.seq >= seq ? last.seq : seq;
    const { rows } = await client.query(
      `SELECT h.seq::float8 AS head, (SELECT e.batch::text FROM ${t.events} e WHERE e.log = $1 AND e.seq = $2) AS batch
         FROM ${t.heads} h WHERE h.log = $1 FOR UPDATE OF h`,
      [log, at],
    );
    const now = rows[0] as { head: number; batch: string | null } | undefined;
    const head = now?.head ?? 0;
    const lost =
      head < at
        ? `the log ends at seq ${head}`
        : last !== null && at === last.seq && now?.batch !== last.batch
          ? `seq ${at} is now from batch ${now?.batch ?? '(none)'}, not ${last.batch}`
          : null;
    if (lost !== null) {
      deps.suspect();
      throw new LogLostError(deps.where, at, `${lost}; the compaction at seq ${seq} was not switched in`);
    }
    if (version !== undefined)
      await client.query(
        `INSERT INTO ${t.meta} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        [projectionsVersionKey(log), projectionsVersionValue(id, version)],
      );
    await client.query(`UPDATE ${t.heads} SET snapshot_seq = $2, snapshot_id = $3 WHERE log = $1`, [
      log,
      seq,
      id,
    ]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

async function writeEntries(
  client: PgClientLike,
  t: Tables,
  log: string,
  id: number,
  entries: IterableIterator<[string, JsonValue]>,
): Promise<void> {
  const insert = `INSERT INTO ${t.snapshot} (log, id, ord, key, value)
    SELECT $1, $2, e.ord, e.key, e.value FROM unnest($3::integer[], $4::text[], $5::text[]) AS e(ord, key, value)`;
  let ord = 0;
  let ords: number[] = [];
  let ks: string[] = [];
  let values: string[] = [];
  const flush = async () => {
    if (ords.length === 0) return;
    await client.query(insert, [log, id, ords, ks, values]);
    ords = [];
    ks = [];
    values = [];
  };
  for (const [key, value] of entries) {
    ords.push(++ord);
    ks.push(key);
    values.push(JSON.stringify(value));
    if (ords.length === SLICE) await flush();
  }
  await flush();
}

/**
 * `keepAfter` moved back to the row before the head of the group holding `keepAfter + 1`: a
 * consumer's position may fall inside a group, and what is kept must start with a whole one.
 */
async function groupStartBefore(
  client: PgClientLike,
  t: Tables,
  log: string,
  keepAfter: number,
): Promise<number> {
  const { rows } = await client.query(
    `SELECT max(seq)::float8 AS head FROM ${t.events} WHERE log = $1 AND seq <= $2 AND n > 0`,
    [log, keepAfter + 1],
  );
  const head = (rows[0] as { head: number | null }).head;
  return head === null ? keepAfter : Math.min(keepAfter, Number(head) - 1);
}

/** Deletes the events up to `seq`, oldest first, a slice per statement. */
async function deleteCovered(client: PgClientLike, t: Tables, log: string, seq: number): Promise<void> {
  const { rows } = await client.query(`SELECT min(seq)::float8 AS low FROM ${t.events} WHERE log = $1`, [
    log,
  ]);
  const low = (rows[0] as { low: number | null }).low;
  if (low === null) return;
  for (let from = low - 1; from < seq; from += SLICE) {
    const to = Math.min(seq, from + SLICE);
    await client.query(`DELETE FROM ${t.events} WHERE log = $1 AND seq > $2 AND seq <= $3`, [log, from, to]);
  }
}
