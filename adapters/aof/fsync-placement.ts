/**
 * The slowest fsync the event loop may run before the writer moves fsyncs to the thread pool:
 * while a group's fsync blocks the loop, no timer fires and no socket is read, so an fsync on
 * the loop is worth its saved thread-pool round trip (tens of µs, and an event-loop wake-up)
 * only while it takes well under a millisecond.
 */
export const SLOW_FSYNC_SECONDS = 0.001;

/**
 * Lone batches in a row before one goes to the loop: a lone batch right after a crowded one
 * (one command that came back early out of 64) is no sign that the process runs one command
 * at a time, and on the loop it would hold up the 63 others' next batch for a whole fsync
 * instead of letting them encode while the disk works.
 */
const LONE_RUN = 4;

/** Fast fsyncs in a row, in the pool, needed before the loop is tried again after a fall back. */
const FIRST_PROBATION = 32;
/** The most a probation grows to (doubling after each quick fall back): a disk that stays slow is tried once per this many fsyncs. */
const MAX_PROBATION = 4096;
/**
 * Fsyncs on the loop since it was last allowed, from which a fall back counts as an outlier of a
 * fast disk (probation back to its first length) rather than a disk still slow (doubled).
 */
const STEADY = 128;

/**
 * Where an `always` group's fdatasync runs, as `AofStoreOptions.fsyncOnEventLoop` says: fixed
 * (`true`: the event loop; `false`: the thread pool) or chosen per group (`'adaptive'`).
 *
 * Adaptive, the invariants:
 * - a group goes to the loop only when it is alone in its batch, as were the batches before it
 *   (`LONE_RUN` in a row: one command in flight, so nothing else could run during the fsync
 *   anyway but that command's own successor), and no fsync seen since the last probation was
 *   slow; when groups pile up, the pool lets the event loop encode and dispatch the next batch
 *   while the disk works (group commit), as before;
 * - one slow fsync (over `SLOW_FSYNC_SECONDS`, wherever it ran) sends every later group to
 *   the pool: on a slow disk the loop is blocked by at most that one fsync, then once per
 *   probation (the pool's fsyncs must be fast `probation` times in a row before the loop is
 *   tried again; a fall back within `STEADY` loop fsyncs of the last try doubles it, up to
 *   `MAX_PROBATION`, a later one starts it again from `FIRST_PROBATION`);
 * - where the fsync runs never changes when a command is acknowledged: after the fdatasync that
 *   covers its bytes returned, either way.
 *
 * A pool fsync's time is measured from the call to its callback, so it includes the wait for
 * a thread and for the event loop: a busy process reads as a slow disk and stays in the pool,
 * the safe side.
 */
export class FsyncPlacement {
  private loopAllowed: boolean;
  private fastInPool = 0;
  /** Fsyncs on the loop since it was last allowed (at the start, as after a long fast run). */
  private sinceAllowed = STEADY;
  private probation = FIRST_PROBATION;
  /** Lone batches in a row, this one included. */
  private lone = 0;
  /** Times the adaptive placement moved fsyncs from the loop to the pool (`StoreStats.fsyncFallBacks`). */
  fallBacks = 0;
  /** Fdatasyncs of appended data run on the event loop, and in the pool (`StoreStats.eventLoopFsyncs`). */
  onLoop = 0;
  inPool = 0;
  /**
   * What a pool fdatasync has taken lately, in ms from the call to its callback (a moving average,
   * 1/8 per fsync): how long a batch started now keeps the disk busy. Infinite until one was seen,
   * so that nothing is taken early before the disk was timed (see `takeEarly`).
   */
  poolFsyncMs = Number.POSITIVE_INFINITY;

  constructor(private readonly mode: boolean | 'adaptive') {
    this.loopAllowed = mode !== false;
  }

  /** Whether the fdatasync of the next batch, of `groups` groups, runs on the event loop. Called once per batch, in order. */
  onEventLoop(groups: number): boolean {
    if (this.mode !== 'adaptive') return this.mode;
    this.lone = groups === 1 ? this.lone + 1 : 0;
    return this.loopAllowed && this.lone >= LONE_RUN;
  }

  /** An fdatasync of appended data took `seconds`, on the loop or in the pool. */
  observe(seconds: number, onLoop: boolean): void {
    if (onLoop) this.onLoop++;
    else {
      this.inPool++;
      const ms = seconds * 1000;
      this.poolFsyncMs =
        this.poolFsyncMs === Number.POSITIVE_INFINITY ? ms : this.poolFsyncMs + (ms - this.poolFsyncMs) / 8;
    }
    if (this.mode !== 'adaptive') return;
    if (seconds > SLOW_FSYNC_SECONDS) {
      this.fastInPool = 0;
      if (this.loopAllowed) {
        this.loopAllowed = false;
        this.fallBacks++;
        // A disk slow again soon after it was tried is tried less often; an outlier after a long
        // fast run is no sign of a slow disk.
        this.probation =
          this.sinceAllowed >= STEADY ? FIRST_PROBATION : Math.min(this.probation * 2, MAX_PROBATION);
      }
      return;
    }
    if (onLoop) {
      this.sinceAllowed++;
    } else if (!this.loopAllowed && ++this.fastInPool >= this.probation) {
      this.loopAllowed = true;
      this.fastInPool = 0;
      this.sinceAllowed = 0;
    }
  }
}

/**
 * Whether the batch being gathered should go to the disk now rather than at the end of the
 * event-loop turn, under `always` with its fdatasync in the pool: true when the disk is idle (no
 * commit in flight) and the batch has been gathering (the loop busy deciding and encoding its
 * commands since its first group, `gatheringMs`) for at least as long as a pool fdatasync takes.
 *
 * Why: the acknowledgements of one fdatasync wake all its commands' successors in one run of
 * microtasks, so at the turn's end they form one batch again, and the disk and the event loop
 * take turns (`always` ×64: the disk busy a third of each cycle). Sent once the gathering has
 * lasted an fsync, the first part of them is on the disk while the loop encodes the rest, which
 * goes out the moment that fdatasync returns: two batches in alternation, each fsync overlapping
 * the next batch's CPU work. When an fsync takes longer than a whole turn's work (a slow disk, a
 * few commands in flight) the condition never holds and each turn stays one batch, as before, so
 * no extra fsync is paid where it would not overlap anything. Where a group's bytes go, and when
 * it is acknowledged (after the fdatasync covering them), are unchanged.
 */
export function takeEarly(groups: number, gatheringMs: number, poolFsyncMs: number): boolean {
  return groups >= 2 && gatheringMs >= poolFsyncMs;
}
