import type { SqliteDatabase, SqliteStatement } from './driver';
import { AppClosedError, type EventGroup, InvalidEventError, PersistenceError } from '../../src/index';
import { GroupCommit, type Waiting } from '../../src/kit/index';
import { reactionStatement } from './consumers';

/** Rows per multi-row INSERT. */
const WIDE = 32;
/** Columns per row: seq, time, type, data, n, id, version, metadata. */
const COLUMNS = 8;

/** The groups of one batch, their payloads and the appends waiting on them. */
interface Batch extends Waiting {
  groups: EventGroup[];
  /** `JSON.stringify` of each event's data, serialised at append time (so `bufferLength` is known). */
  payloads: string[];
  /** Per group: its metadata's JSON, or null. */
  metadata: (string | null)[];
}

/** What the group writer needs from its store. */
export interface GroupWriterHooks {
  /**
   * Before a commit: true while it must wait (everysec: Redis's postpone rule while the WAL is
   * fsynced in the background). The store calls `schedule()` when it may go.
   */
  mustPostpone?(): boolean;
  /** After each commit (the everysec syncer counts what was written). */
  committed?(): void;
}

/**
 * Group commit, on the kit's GroupCommit: every `append` of one event-loop turn joins one pending
 * batch; a `setImmediate` commits the batch in one transaction and only then resolves its
 * promises. `setImmediate` (not a microtask) lets the promise chains of the commands
 * acknowledged by the last commit run, and dispatch their successors, before the next commit:
 * 64 commands in flight make transactions of 64 rows.
 *
 * Invariants: a promise resolves only after the COMMIT that holds its group returned; batches
 * commit in append order; after a failed commit the transaction is rolled back (nothing that was
 * not acknowledged stays in the database) before any promise rejects, and every append is
 * refused with the same error until `clear()`.
 */
export class GroupWriter {
  private batch: Batch = newBatch();
  private closed = false;
  /** Set during `flush()`: the batch goes now, whatever `mustPostpone` says. */
  private forced = false;
  private readonly commit: GroupCommit<Batch>;
  private readonly begin: SqliteStatement;
  private readonly commitStatement: SqliteStatement;
  private readonly insert: SqliteStatement;
  /** Inserts {@link WIDE} rows at once: one call into SQLite instead of one per row. */
  private readonly insertWide: SqliteStatement;
  private readonly args: (string | number | null)[] = new Array(WIDE * COLUMNS);
  /** A reaction's position update (see `reactionStatement`), prepared by the first reaction. */
  private reaction: SqliteStatement | null = null;
  /** Characters of event data (JSON) accepted and not yet committed: Redis's `aof_buffer_length`. */
  bufferLength = 0;
  /** The last sequence number appended (committed or pending). */
  lastSeq = 0;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly file: string,
    private readonly hooks: GroupWriterHooks = {},
  ) {
    this.begin = db.prepare('BEGIN');
    this.commitStatement = db.prepare('COMMIT');
    this.insert = db.prepare(
      'INSERT INTO events (seq, time, type, data, n, id, version, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.insertWide = db.prepare(
      `INSERT INTO events (seq, time, type, data, n, id, version, metadata) VALUES ${Array.from({ length: WIDE }, () => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
    );
    this.commit = new GroupCommit<Batch>({
      take: () => this.take(),
      commit: (batch) => this.writeBatch(batch.groups, batch.payloads, batch.metadata),
      drop: () => [this.take(true) ?? newBatch()],
      // writeBatch rolled back before it threw: nothing is left to undo.
      undo: () => {},
      committed: () => hooks.committed?.(),
      error: (err) => PersistenceError.from(`cannot write the log ${file}`, err),
    });
  }

  /** The error appends are refused with, or null. */
  get error(): PersistenceError | null {
    return this.commit.error;
  }

  /** Counts failures, so that a compaction can tell that one happened while it ran. */
  get failures(): number {
    return this.commit.failures;
  }

  append(group: EventGroup): Promise<void> {
    const failure = this.commit.error;
    if (failure !== null) return Promise.reject(failure);
    if (this.closed)
      return Promise.reject(new AppClosedError(`the SqliteWalStore on ${this.file} is closed`));
    const batch = this.batch;
    const events = group.events;
    if (group.ids !== undefined && group.ids.length !== events.length)
      return Promise.reject(
        new InvalidEventError(
          `the group at seq ${group.seq} has ${group.ids.length} ids for ${events.length} events`,
        ),
      );
    for (let i = 0; i < events.length; i++) {
      const payload = JSON.stringify(events[i].data);
      batch.payloads.push(payload);
      this.bufferLength += payload.length;
    }
    // The metadata's JSON goes with the first event's payload slot: one string per group at most.
    batch.metadata.push(group.metadata === undefined ? null : JSON.stringify(group.metadata));
    batch.groups.push(group);
    this.lastSeq = group.seq + events.length - 1;
    this.commit.schedule();
    return this.commit.waitFor(batch);
  }

  /** Commits on the next turn (after a postponed commit may go). */
  schedule(): void {
    this.commit.schedule();
  }

  /**
   * Commits everything pending now, synchronously (a compaction's swap, close: no postponing).
   * Returns false if the commit failed (the failure is then set and every pending promise rejects).
   */
  flush(): boolean {
    this.forced = true;
    try {
      return this.commit.flushNow();
    } finally {
      this.forced = false;
    }
  }

  private take(force = this.forced): Batch | null {
    const batch = this.batch;
    if (batch.groups.length === 0) return null;
    if (!force && this.hooks.mustPostpone?.()) return null;
    this.batch = newBatch();
    this.bufferLength = 0;
    return batch;
  }

  /** Puts the writer in its failed state (also used by the background fsync). */
  fail(err: unknown): void {
    void this.commit.fail(err);
  }

  /** Leaves the failed state; the caller has checked that the database can be written again. */
  clear(): void {
    this.commit.clear();
  }

  /** Flushes what is pending; later appends are refused with `AppClosedError`. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private writeBatch(groups: EventGroup[], payloads: string[], metadata: (string | null)[]): void {
    const insert = this.insert;
    const wide = this.insertWide;
    const args = this.args;
    let p = 0;
    let a = 0;
    this.begin.run();
    try {
      for (let g = 0; g < groups.length; g++) {
        const { seq, time, events, ids, versions } = groups[g];
        for (let i = 0; i < events.length; i++) {
          args[a++] = seq + i;
          args[a++] = time;
          args[a++] = events[i].type;
          args[a++] = payloads[p++];
          args[a++] = i === 0 ? events.length : 0;
          args[a++] = ids === undefined ? null : ids[i];
          args[a++] = versions === undefined ? null : versions[i];
          args[a++] = i === 0 ? metadata[g] : null;
          if (a === args.length) {
            wide.run(args);
            a = 0;
          }
        }
      }
      for (let i = 0; i < a; i += COLUMNS) insert.run(args.slice(i, i + COLUMNS));
      // A reaction's position commits in the transaction of its events: both or neither.
      for (let g = 0; g < groups.length; g++) {
        const consumer = groups[g].consumer;
        if (consumer === undefined) continue;
        this.reaction ??= reactionStatement(this.db);
        this.reaction.run(consumer.position, consumer.name);
      }
      this.commitStatement.run();
    } catch (err) {
      // SQLite may already have rolled back (SQLITE_FULL, SQLITE_IOERR): the rollback is then a no-op.
      if (this.db.inTransaction) {
        try {
          this.db.exec('ROLLBACK');
        } catch {
          // the connection is broken; recover() reopens nothing but probes it, and refuses while it fails
        }
      }
      throw err;
    }
  }
}

function newBatch(): Batch {
  return { groups: [], payloads: [], metadata: [], resolves: [], rejects: [] };
}
