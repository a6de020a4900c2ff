import type Database from 'better-sqlite3';
import { AppClosedError, type EventGroup, PersistenceError } from '../../src/index';

/** Rows per multi-row INSERT. */
const WIDE = 32;

/**
 * Group commit. Every `append` of one event-loop turn joins one pending batch; a `setImmediate`
 * commits the batch in one transaction and only then resolves its promises. `setImmediate` (not
 * a microtask) lets the promise chains of the commands acknowledged by the last commit run, and
 * dispatch their successors, before the next commit: 64 commands in flight make transactions of
 * 64 rows.
 *
 * Invariants: a promise resolves only after the COMMIT that holds its group returned; batches
 * commit in append order; after a failed commit the transaction is rolled back (nothing that was
 * not acknowledged stays in the database) and every append is refused with the same error until
 * `clear()`.
 */
export class GroupWriter {
  private groups: EventGroup[] = [];
  /** `JSON.stringify` of each event's data, serialised at append time (so `bufferLength` is known). */
  private payloads: string[] = [];
  private resolvers: (() => void)[] = [];
  private rejecters: ((err: unknown) => void)[] = [];
  private scheduled = false;
  private closed = false;
  private failure: PersistenceError | null = null;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly insert: Database.Statement;
  /** Inserts {@link WIDE} rows at once: one call into SQLite instead of one per row. */
  private readonly insertWide: Database.Statement;
  private readonly args: (string | number)[] = new Array(WIDE * 5);
  /** Characters of event data (JSON) accepted and not yet committed: Redis's `aof_buffer_length`. */
  bufferLength = 0;
  /** The last sequence number appended (committed or pending). */
  lastSeq = 0;
  /** Counts failures, so that a compaction can tell that one happened while it ran. */
  failures = 0;
  private readonly flushCallback = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
  ) {
    this.begin = db.prepare('BEGIN');
    this.commit = db.prepare('COMMIT');
    this.insert = db.prepare('INSERT INTO events (seq, time, type, data, n) VALUES (?, ?, ?, ?, ?)');
    this.insertWide = db.prepare(
      `INSERT INTO events (seq, time, type, data, n) VALUES ${Array.from({ length: WIDE }, () => '(?, ?, ?, ?, ?)').join(', ')}`,
    );
  }

  /** The error appends are refused with, or null. */
  get error(): PersistenceError | null {
    return this.failure;
  }

  append(group: EventGroup): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed)
      return Promise.reject(new AppClosedError(`the SqliteWalStore on ${this.file} is closed`));
    const events = group.events;
    for (let i = 0; i < events.length; i++) {
      const payload = JSON.stringify(events[i].data);
      this.payloads.push(payload);
      this.bufferLength += payload.length;
    }
    this.groups.push(group);
    this.lastSeq = group.seq + events.length - 1;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushCallback);
    }
    return new Promise<void>((resolve, reject) => {
      this.resolvers.push(resolve);
      this.rejecters.push(reject);
    });
  }

  /**
   * Commits everything pending now, synchronously. Returns false if the commit failed (the
   * failure is then set and every pending promise rejected).
   */
  flush(): boolean {
    const groups = this.groups;
    if (groups.length === 0) return this.failure === null;
    const payloads = this.payloads;
    const resolvers = this.resolvers;
    const rejecters = this.rejecters;
    this.groups = [];
    this.payloads = [];
    this.resolvers = [];
    this.rejecters = [];
    this.bufferLength = 0;
    try {
      if (this.failure !== null) throw this.failure;
      this.writeBatch(groups, payloads);
    } catch (err) {
      const error = this.fail(err);
      for (let i = 0; i < rejecters.length; i++) rejecters[i](error);
      return false;
    }
    for (let i = 0; i < resolvers.length; i++) resolvers[i]();
    return true;
  }

  /** Puts the writer in its failed state (also used by the background fsync). */
  fail(err: unknown): PersistenceError {
    if (this.failure === null) {
      this.failure = PersistenceError.from(`cannot write the log ${this.file}`, err);
      this.failures++;
    }
    return this.failure;
  }

  /** Leaves the failed state; the caller has checked that the database can be written again. */
  clear(): void {
    this.failure = null;
  }

  /** Flushes what is pending; later appends are refused with `AppClosedError`. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private writeBatch(groups: EventGroup[], payloads: string[]): void {
    const insert = this.insert;
    const wide = this.insertWide;
    const args = this.args;
    let p = 0;
    let a = 0;
    this.begin.run();
    try {
      for (let g = 0; g < groups.length; g++) {
        const { seq, time, events } = groups[g];
        for (let i = 0; i < events.length; i++) {
          args[a++] = seq + i;
          args[a++] = time;
          args[a++] = events[i].type;
          args[a++] = payloads[p++];
          args[a++] = i === 0 ? events.length : 0;
          if (a === args.length) {
            wide.run(args);
            a = 0;
          }
        }
      }
      for (let i = 0; i < a; i += 5) insert.run(args[i], args[i + 1], args[i + 2], args[i + 3], args[i + 4]);
      this.commit.run();
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
