import type { Logger } from '../../src/index';

/** Redis's aofRewriteLimited: after this many failures in a row, automatic rewrites back off. */
const BACKOFF_THRESHOLD = 3;
const BACKOFF_MAX_MINUTES = 60;

/**
 * When to compact on its own, as Redis's serverCron decides: the log is larger than
 * `minSize` and has grown by `percentage` % over its size right after the last rewrite
 * (`growth = current * 100 / base - 100`). After 3 failed rewrites in a row, automatic ones wait
 * 1, 2, 4 … up to 60 minutes between attempts (aofRewriteLimited); a manual one always runs.
 */
export class RewriteTrigger {
  private backoffMinutes = 0;
  private nextAttempt = 0;

  constructor(
    private readonly percentage: number,
    private readonly minSize: number,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when a rewrite should start now; logs why. */
  due(size: number, baseSize: number, consecutiveFailures: number): boolean {
    if (this.percentage === 0 || size <= this.minSize) return false;
    const growth = (size * 100) / Math.max(baseSize, 1) - 100;
    if (growth < this.percentage || this.limited(consecutiveFailures)) return false;
    this.logger.info(
      `starting automatic compaction: the log grew by ${Math.floor(growth)}% to ${size} bytes`,
    );
    return true;
  }

  private limited(failures: number): boolean {
    if (failures < BACKOFF_THRESHOLD) {
      this.backoffMinutes = 0;
      this.nextAttempt = 0;
      return false;
    }
    const now = this.now();
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
    this.logger.warn(
      `compaction has failed repeatedly; retrying automatically in ${this.backoffMinutes} minutes`,
    );
    return true;
  }
}
