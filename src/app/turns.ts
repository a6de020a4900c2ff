import type { CommandQueue } from './command-queue';

/** How long a shared log counts as contended after the last sign of another writer. */
export const CONTENDED_MS = 1000;

/** What turns need from the committer. */
export interface TurnHost {
  readonly queue: CommandQueue;
  /** Settles once every append made so far has. */
  settled(): Promise<void>;
  /** Settles once no conflict is being resolved. */
  resolved(): Promise<void>;
  /** Why a command is refused right now (the app failed), or null. */
  refusal(): Error | null;
  /**
   * Catches up on the locked log (`replay({ after, lock: true })`, serialised with the
   * follower's catch-ups): the next append lands. Resolves with how many sequence numbers of
   * other writers it applied.
   */
  catchUpLocked(): Promise<number>;
}

/**
 * Decisions in turns, while other writers contend for a shared log. Deciding as commands come
 * loses there: with four instances each batch is decided on a state that another instance's
 * commit has made stale by the time its append gets the head, so nearly every command is
 * applied, appended (found stale under the lock), rolled back and decided again (measured: 0.99
 * extra decisions per command). In turns the queue stays paused; when commands wait, the
 * instance locks the head and reads the others' commands (one catch-up on the locked head, the
 * lock and the read in one round trip), then decides every waiting command in one drain: one
 * batch, appended in the lock's transaction with its COMMIT, so it lands. The next turn starts
 * once that append has settled, so the instance never races itself. Each command is decided
 * once; nothing is rolled back.
 *
 * Invariant: turns hold one pause of the queue exactly while `active`; they end (the queue
 * resumes, commands are decided as they come again) once no other writer was seen for
 * {@link CONTENDED_MS}, when the app fails, or at `stop`, so that nothing waits on a turn that
 * will not come.
 */
export class Turns {
  private active = false;
  private until = 0;
  private running: Promise<void> | null = null;

  constructor(private readonly host: TurnHost) {}

  /** True while commands are decided in turns. */
  get taking(): boolean {
    return this.active;
  }

  /**
   * True while a turn runs or is due (commands wait): it reads what the others committed by
   * itself, so a follower's catch-up beside it is work done twice.
   */
  get catchesUpItself(): boolean {
    return this.active && (this.running !== null || this.host.queue.waitingCount > 0);
  }

  /** Another writer was seen (a conflict): take turns for a while. */
  contended(): void {
    this.until = performance.now() + CONTENDED_MS;
    if (this.active) return;
    this.active = true;
    const queue = this.host.queue;
    queue.pause();
    queue.whenWaiting = () => this.run();
    this.run();
  }

  /** Ends turns (the app closes): what waits is decided as it comes. */
  stop(): void {
    this.until = 0;
    if (this.running === null) this.end();
  }

  private run(): void {
    if (this.running !== null) return;
    const running = this.loop().finally(() => {
      if (this.running === running) this.running = null;
      // A command that came to wait while the loop was returning would wait for the next one.
      if (this.active && this.host.queue.waitingCount > 0) this.run();
    });
    this.running = running;
  }

  private async loop(): Promise<void> {
    const host = this.host;
    const queue = host.queue;
    for (;;) {
      // One append in flight: the last turn's batch commits (and lets the lock go) first.
      await host.resolved();
      await host.settled();
      if (host.refusal() !== null || performance.now() > this.until) return this.end();
      if (queue.waitingCount === 0) return; // the next command to wait runs the loop again
      let others: number;
      try {
        others = await host.catchUpLocked();
      } catch {
        // The log cannot be read: decide as usual, and let the appends meet the failure.
        return this.end();
      }
      if (others > 0) this.until = performance.now() + CONTENDED_MS;
      // Everything waiting is decided now, in one drain: one batch, sent under the lock.
      queue.resume();
      queue.pause();
    }
  }

  private end(): void {
    if (!this.active) return;
    this.active = false;
    const queue = this.host.queue;
    queue.whenWaiting = null;
    queue.resume();
  }
}
