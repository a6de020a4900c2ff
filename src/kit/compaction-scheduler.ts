import { PersistenceError } from '../errors';
import type { CompactionResult, StoreContext, StoreStats } from '../store/event-store';
import type { Logger } from '../runtime/logger';
import type { SnapshotSource } from '../store/snapshot-source';
import type { CompactionTrace } from '../telemetry/telemetry';
import { RewriteTrigger } from './rewrite-trigger';

/** The compaction fields of Redis's INFO persistence, as every store reports them (their meaning: StoreStats). */
export type CompactionStats = Required<
  Pick<
    StoreStats,
    | 'rewriteInProgress'
    | 'rewriteScheduled'
    | 'lastRewriteTimeSec'
    | 'currentRewriteTimeSec'
    | 'lastBgrewriteStatus'
    | 'rewrites'
    | 'rewritesConsecutiveFailures'
    | 'currentSize'
    | 'baseSize'
  >
>;

/** What a store that is not open reports. */
export const IDLE_COMPACTION_STATS: CompactionStats = {
  rewriteInProgress: false,
  rewriteScheduled: false,
  lastRewriteTimeSec: -1,
  currentRewriteTimeSec: -1,
  lastBgrewriteStatus: 'ok',
  rewrites: 0,
  rewritesConsecutiveFailures: 0,
  currentSize: 0,
  baseSize: 0,
};

/** The writes a compaction depends on: a follow-up is cancelled when one failed after it was asked for. */
export interface WriteHealth {
  readonly error: PersistenceError | null;
  readonly failures: number;
}

/** The store's automatic-compaction settings (Redis's auto-aof-rewrite-percentage and -min-size). */
export interface AutoRewriteSettings {
  readonly autoRewritePercentage: number;
  readonly autoRewriteMinSize: number;
}

/** What the scheduler needs from its store. */
export interface SchedulerHost {
  /** Unit of `size()`: `bytes`, or `records` for the memory store. */
  readonly unit: string;
  readonly writes: WriteHealth;
  /** The log's size now. */
  size(): number;
  /** Runs one compaction, taking its snapshot from `snapshots` (the scheduler marks that instant). */
  run(snapshots: SnapshotSource): Promise<CompactionResult>;
}

/** One compaction: running, or a follow-up waiting for the running one. */
interface Run {
  promise: Promise<CompactionResult>;
  /** The instant its snapshot was taken has passed: a later call cannot be covered by it. */
  snapshotted: boolean;
  startedAt: number;
}

/**
 * BGREWRITEAOF's bookkeeping, one for every store:
 *
 * - One compaction runs at a time (the app's state allows one open snapshot).
 * - A `compact()` while one runs: before that one took its snapshot, it joins it (same promise,
 *   same result: the snapshot will cover everything the caller did). After, the caller's commands
 *   may not be covered, so a follow-up is due; every call until the follow-up takes ITS snapshot
 *   joins that one follow-up, which starts when the running one settles. So a compaction's result
 *   always covers every command executed before the `compact()` that returned it.
 * - A compaction starts in a microtask, never inside `compact()`: the calls of one synchronous run
 *   of code join one compaction on every store alike, and a microtask still runs in an app that
 *   never yields to the event loop (the memory store compacts from within `append`).
 * - A follow-up is cancelled if a write failed after it was asked for: the app is reloading its
 *   state from the log, and a snapshot of a half-loaded state must never become the log. No
 *   compaction starts while the writes are failed, nor after `stop()`.
 * - Automatic compactions: Redis's trigger with its back-off ({@link RewriteTrigger}), checked
 *   when the store calls {@link maybeCompact}; held after `recovered()` until `appended()`.
 */
export class CompactionScheduler {
  private current: Run | null = null;
  private next: Run | null = null;
  private readonly trigger: RewriteTrigger;
  private baseSize = 0;
  private rewrites = 0;
  private consecutiveFailures = 0;
  private lastRewriteTimeSec = -1;
  private lastStatus: 'ok' | 'err' = 'ok';
  private held = false;
  private stopped: Error | null = null;

  private readonly logger: Logger;
  /** The store's clock (`StoreContext.clock`): durations and the back-off. */
  private readonly now: () => number;

  constructor(
    settings: AutoRewriteSettings,
    private readonly context: StoreContext,
    private readonly host: SchedulerHost,
  ) {
    this.logger = context.logger;
    this.now = () => context.clock.now();
    this.trigger = new RewriteTrigger({
      percentage: settings.autoRewritePercentage,
      minSize: settings.autoRewriteMinSize,
      unit: host.unit,
      logger: this.logger,
      now: this.now,
    });
    this.baseSize = host.size();
  }

  /** True while a compaction runs or one is due after it. */
  get busy(): boolean {
    return this.current !== null || this.next !== null;
  }

  /** BGREWRITEAOF: see the class comment for what a call while one runs gets. */
  compact(): Promise<CompactionResult> {
    const current = this.current;
    if (current === null) return this.start().promise;
    if (!current.snapshotted) return current.promise;
    if (this.next !== null) return this.next.promise;
    const failures = this.host.writes.failures;
    const next: Run = { promise: null!, snapshotted: false, startedAt: 0 };
    next.promise = current.promise
      .catch(() => {})
      .then(() => {
        this.next = null;
        const writes = this.host.writes;
        if (writes.failures !== failures)
          throw new PersistenceError(
            'compaction cancelled: a write failed since it was asked for',
            writes.error?.code,
          );
        return this.start().promise;
      });
    this.next = next;
    return next.promise;
  }

  /** Starts an automatic compaction if the trigger says so (and none runs, the writes are fine, none is held). */
  maybeCompact(): void {
    if (this.busy || this.held || this.host.writes.error !== null) return;
    if (this.trigger.due(this.host.size(), this.baseSize, this.consecutiveFailures))
      this.compact().catch(() => {});
  }

  /** The log was read again (replay) or reset: its size now is the base the trigger grows from. */
  rebase(): void {
    this.baseSize = this.host.size();
  }

  /** After a recovery: no automatic compaction may snapshot the state the app is reloading… */
  recovered(): void {
    this.held = true;
  }

  /** …until it appends again. */
  appended(): void {
    this.held = false;
  }

  /** The store closes: a follow-up not yet started is refused with `error` (not counted as a failure). */
  stop(error: Error): void {
    this.stopped = error;
  }

  /** Waits until no compaction runs and none is due. */
  async idle(): Promise<void> {
    while (this.busy) await (this.next ?? this.current)?.promise.catch(() => {});
  }

  stats(): CompactionStats {
    const current = this.current;
    return {
      rewriteInProgress: current !== null,
      rewriteScheduled: this.next !== null,
      lastRewriteTimeSec: this.lastRewriteTimeSec,
      currentRewriteTimeSec: current !== null ? this.seconds(current.startedAt) : -1,
      lastBgrewriteStatus: this.lastStatus,
      rewrites: this.rewrites,
      rewritesConsecutiveFailures: this.consecutiveFailures,
      currentSize: this.host.size(),
      baseSize: this.baseSize,
    };
  }

  private start(): Run {
    const run: Run = { promise: null!, snapshotted: false, startedAt: this.now() };
    const source = this.context.snapshots;
    const snapshots: SnapshotSource = {
      takeSnapshot: () => {
        run.snapshotted = true;
        return source.takeSnapshot();
      },
    };
    this.current = run;
    let refused = false;
    let trace: CompactionTrace | undefined;
    run.promise = Promise.resolve()
      .then(() => {
        const error = this.stopped ?? this.host.writes.error;
        refused = error !== null;
        if (error !== null) throw error;
        trace = this.context.compacting?.();
        return this.host.run(snapshots);
      })
      .then(
        (result) => {
          this.finish(run, 'ok');
          this.baseSize = result.sizeAfter;
          trace?.end(result);
          return result;
        },
        (err: unknown) => {
          this.current = null;
          // A compaction refused because the writes are failed never ran: it is no failed rewrite.
          if (refused) throw err;
          trace?.end({ error: err });
          this.finish(run, 'err');
          this.logger.warn(`compaction failed, the log is unchanged: ${(err as Error).message}`);
          throw err;
        },
      );
    return run;
  }

  private finish(run: Run, status: 'ok' | 'err'): void {
    this.current = null;
    this.lastStatus = status;
    this.lastRewriteTimeSec = this.seconds(run.startedAt);
    if (status === 'ok') {
      this.rewrites++;
      this.consecutiveFailures = 0;
    } else {
      this.consecutiveFailures++;
    }
  }

  private seconds(since: number): number {
    return Math.round((this.now() - since) / 1000);
  }
}
