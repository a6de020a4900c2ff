import type { Logger } from '../runtime/logger';

/** Redis's aofRewriteLimited: after this many failures in a row, automatic rewrites back off. */
const BACKOFF_THRESHOLD = 3;
const BACKOFF_MAX_MINUTES = 60;

/** What the trigger reads; sizes are in the store's unit (bytes, or records for the memory store). */
export interface TriggerOptions {
  /** Growth over the base size, in percent, that triggers a compaction; 0 never. */
  readonly percentage: number;
  /** No automatic compaction at or below this size. */
  readonly minSize: number;
  /** `bytes` or `records`, for the log line. */
  readonly unit: string;
  readonly logger: Logger;
  readonly now: () => number;
}

/**
 * When to compact on its own, as Redis's serverCron decides: the log is larger than `minSize` and
 * has grown by `percentage` % over its size right after the last rewrite
 * (`growth = size * 100 / max(base, 1) - 100`). After 3 failed rewrites in a row, automatic ones
 * wait 1, 2, 4 … up to 60 minutes between attempts (aofRewriteLimited); a manual one always runs.
 */
export class RewriteTrigger {
  private backoffMinutes = 0;
  private nextAttempt = 0;

  constructor(private readonly options: TriggerOptions) {}

  /** True when a rewrite should start now; logs why (and when it backs off). */
  due(size: number, baseSize: number, consecutiveFailures: number): boolean {
    const { percentage, minSize } = this.options;
    if (percentage === 0 || size <= minSize) return false;
    const growth = (size * 100) / Math.max(baseSize, 1) - 100;
    if (growth < percentage || this.limited(consecutiveFailures)) return false;
    this.options.logger.info(
      `starting automatic compaction: the log grew by ${Math.floor(growth)}% to ${size} ${this.options.unit}`,
    );
    return true;
  }

  /** aofRewriteLimited: true while automatic rewrites wait; each wait doubles, up to an hour. */
  private limited(failures: number): boolean {
    if (failures < BACKOFF_THRESHOLD) {
      this.backoffMinutes = 0;
      this.nextAttempt = 0;
      return false;
    }
    const now = this.options.now();
    if (this.nextAttempt !== 0) {
      if (now < this.nextAttempt) return true;
      this.nextAttempt = 0;
      return false;
    }
    this.backoffMinutes = Math.min(
      this.backoffMinutes === 0 ? 1 : this.backoffMinutes * 2,
      BACKOFF_MAX_MINUTES,
    );
    this.nextAttempt = now + this.backoffMinutes * 60_000;
    this.options.logger.warn(
      `compaction has failed repeatedly; retrying automatically in ${this.backoffMinutes} minutes`,
    );
    return true;
  }
}
