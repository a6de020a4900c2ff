import type { PersistenceError } from '../errors';

/** The acknowledgements waiting on one batch: the promises of the appends that joined it. */
export interface Waiting {
  readonly resolves: (() => void)[];
  readonly rejects: ((err: unknown) => void)[];
}

/** What a store gives the group commit: how its batches are taken, made durable and undone. */
export interface GroupCommitHost<B extends Waiting> {
  /**
   * Takes the next batch to make durable out of what is pending (so that later appends start a
   * new one), or returns null when nothing may go now: nothing pending, held, postponed.
   */
  take(): B | null;
  /**
   * Makes `batch` durable per the store's policy (write, fsync, COMMIT). Synchronous or not; a
   * synchronous commit costs no promise. Throws (rejects) when it could not.
   */
  commit(batch: B): void | Promise<void>;
  /**
   * The failed state is entered: returns every batch still pending (its bytes are dropped) so
   * that its appends reject too. Called at once, so that no pending append can be committed later.
   */
  drop(): B[];
  /**
   * Called before any append hears of the failure: makes the log hold nothing that was not
   * acknowledged (cut the file back, roll back). `failed` is the batch whose commit failed, or
   * null when the failure came from elsewhere (a background fsync).
   */
  undo(failed: B | null): void | Promise<void>;
  /** After a batch is durable and its appends resolved (reuse its buffer, check a trigger). */
  committed?(batch: B): void;
  /** Turns what a commit threw into the error every pending append rejects with. */
  error(err: unknown, failed: B | null): PersistenceError;
  /** The failed state was entered (log it, set a status). */
  failed?(error: PersistenceError): void;
}

/**
 * Group commit, as Redis's beforeSleep flushes the AOF buffer once per event-loop iteration:
 *
 * - appends of one event-loop turn join one batch; a `setImmediate` (not a microtask, so that the
 *   commands acknowledged by the last commit can dispatch their successors first) takes it;
 * - one commit is in flight at a time; what is appended meanwhile forms the next batch, taken as
 *   soon as the commit returns: batches commit in append order;
 * - a promise resolves only after the commit of its batch returned;
 * - on failure: the failed state is entered first (every later append is refused with the same
 *   error, every pending batch dropped), then the host undoes what the failed batch left in the
 *   log, and only then do the promises reject, all with that one PersistenceError; it stays
 *   until `clear()`.
 */
export class GroupCommit<B extends Waiting> {
  private scheduled = false;
  private inFlight: Promise<void> | null = null;
  private failure: PersistenceError | null = null;
  private failing: Promise<void> | null = null;
  /** Failures so far: a compaction compares it to tell that a write failed while it ran. */
  failures = 0;
  private readonly onImmediate = (): void => {
    this.scheduled = false;
    if (this.inFlight === null) this.pump();
  };

  constructor(private readonly host: GroupCommitHost<B>) {}

  /** The error appends are refused with, or null. */
  get error(): PersistenceError | null {
    return this.failure;
  }

  /** The commit in flight (or the failure being undone), if any. */
  get running(): Promise<void> | null {
    return this.inFlight ?? this.failing;
  }

  /** True while a take is due on the next turn. */
  get isScheduled(): boolean {
    return this.scheduled;
  }

  /** The promise of one more append to `batch`: resolves when the batch is durable. */
  waitFor(batch: B): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      batch.resolves.push(resolve);
      batch.rejects.push(reject);
    });
  }

  /** Something was appended (or may go now): take it on the next turn, unless a commit runs (it takes it after). */
  schedule(): void {
    if (this.scheduled || this.inFlight !== null || this.failure !== null) return;
    this.scheduled = true;
    setImmediate(this.onImmediate);
  }

  /**
   * Commits what is pending now; with a synchronous host, everything is committed when it
   * returns. Returns false if the writer is (now) failed.
   */
  flushNow(): boolean {
    if (this.inFlight === null) this.pump();
    return this.failure === null;
  }

  /** Takes and commits batches until none may go; continues asynchronously after an asynchronous commit. */
  private pump(): void {
    const host = this.host;
    while (this.failure === null) {
      const batch = host.take();
      if (batch === null) return;
      let pending: void | Promise<void>;
      try {
        pending = host.commit(batch);
      } catch (err) {
        void this.fail(err, batch);
        return;
      }
      if (pending !== undefined) {
        this.inFlight = pending.then(
          () => {
            this.inFlight = null;
            this.acknowledge(batch);
            this.pump();
          },
          (err: unknown) => {
            this.inFlight = null;
            return this.fail(err, batch);
          },
        );
        return;
      }
      this.acknowledge(batch);
    }
  }

  private acknowledge(batch: B): void {
    const resolves = batch.resolves;
    for (let i = 0; i < resolves.length; i++) resolves[i]();
    this.host.committed?.(batch);
  }

  /**
   * Enters the failed state (the first error stays the one reported), drops what is pending,
   * undoes, then rejects. Also for failures found elsewhere (a background fsync): `failed` null.
   */
  async fail(err: unknown, failed: B | null = null): Promise<void> {
    const host = this.host;
    if (this.failure === null) {
      this.failure = host.error(err, failed);
      this.failures++;
      host.failed?.(this.failure);
    }
    const error = this.failure;
    const all = host.drop();
    if (failed !== null) all.unshift(failed);
    // Undo first, reject after: once a caller hears of the failure, the log no longer holds its group.
    const undone = Promise.resolve()
      .then(() => host.undo(failed))
      .catch(() => {});
    this.failing = undone;
    await undone;
    if (this.failing === undone) this.failing = null;
    for (const batch of all) for (const reject of batch.rejects) reject(error);
  }

  /** Leaves the failed state; the caller has checked that the log can be written again. */
  clear(): void {
    this.failure = null;
    this.schedule();
  }
}
