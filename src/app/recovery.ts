import { PersistenceError, ProjectionsVersionError } from '../errors';
import type { Logger } from '../runtime/logger';

/** How long a failed app waits between attempts to make its log writable again (Redis retries every second). */
export const RECOVERY_INTERVAL_MS = 1000;

/** What recovery needs from the App. */
export interface RecoveryHost {
  readonly logger: Logger;
  /** True while the app takes commands (a failure then switches it to `failed`). */
  isReady(): boolean;
  /** Switches the app's status: `failed` on a failure, `ready` once recovered. */
  setFailed(failed: boolean): void;
  /**
   * One attempt: waits for the appends in flight, lets the store repair its log, and makes the
   * state show exactly what is durable again. Rejects while the fault lasts.
   */
  repair(): Promise<void>;
}

/**
 * The failed state and the way out of it, as Redis handles a failed AOF write: while the log
 * cannot be written every command is refused with the same `PersistenceError` (nothing is
 * acknowledged that is not durable), and once a second the app tries to make it writable
 * again; the first attempt that succeeds puts it back to work.
 */
export class Recovery {
  /** While set, commands reject with it. */
  failure: PersistenceError | null = null;
  /** True while an attempt runs (the App's close waits for it). */
  attempting = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly host: RecoveryHost) {}

  /**
   * A write failed (or, on a shared log, the log can no longer be followed): from now on
   * commands are refused until an attempt succeeds. Returns the error to reject with.
   */
  fail(err: unknown): PersistenceError {
    if (this.failure !== null) return this.failure;
    if (err instanceof ProjectionsVersionError) {
      // A follower that met another version's snapshot over compacted events writes fine: it
      // cannot read the log with its projections, and no retry changes that (the events are
      // gone), so none is scheduled. Its code (PROJECTIONS_VERSION) is kept.
      const error = PersistenceError.from('the log cannot be followed', err);
      if (!this.host.isReady()) return error;
      this.failure = error;
      this.host.setFailed(true);
      this.host.logger.error(`${error.message}; refusing commands until this instance is restarted`);
      return error;
    }
    const error = PersistenceError.from('the log could not be written', err);
    if (!this.host.isReady()) return error;
    this.failure = error;
    this.host.setFailed(true);
    this.host.logger.error(`${error.message}; refusing commands until the log can be written again`);
    this.schedule();
    return error;
  }

  /** Tries once to leave the failed state. */
  async attempt(): Promise<void> {
    if (this.failure === null || this.attempting) return;
    this.attempting = true;
    try {
      await this.host.repair();
    } finally {
      this.attempting = false;
    }
    if (this.failure === null) return;
    this.failure = null;
    this.host.setFailed(false);
    this.host.logger.info('the log can be written again; accepting commands');
  }

  /** Stops retrying (the app closes). */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      this.attempt().catch(() => {
        if (this.failure !== null) this.schedule();
      });
    }, RECOVERY_INTERVAL_MS);
    this.timer.unref();
  }
}
