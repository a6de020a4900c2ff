import type { PgClientLike } from './driver';
import { type LockedRead, lockAndRead } from './replay';
import type { Tables } from './schema';

/** How long a locked head waits for the append it was taken for before it lets the others go. */
export const HOLD_MS = 100;

/**
 * Fairness after a conflict (plain optimistic retry starves an instance under a busy log: by the
 * time it has caught up and decided again, another instance has appended, again and again). The
 * instance that lost locks the head row (`SELECT … FOR UPDATE` in a transaction on the writer's
 * connection) and reads the others' commands under it, in the same round trip (`lockAndRead`):
 * nobody can append until it has, so its catch-up reads to the true head and its next append,
 * sent in the same transaction with its COMMIT (`insertAndCommit`), lands. The others queue on
 * the row lock meanwhile, in order, as they do behind any append; every round trip made while
 * the lock is held is waited for by all of them, so there are as few as can be: the lock and
 * its read, then the append and its COMMIT.
 *
 * While the log is contended the writer locks first, before each append (`PgWriter`); when the
 * head has moved, the lock and what it read are kept (`keep`) for the catch-up of that conflict.
 *
 * Invariant: the lock is held for at most {@link HOLD_MS} after the catch-up (or after `keep`);
 * an app that has nothing to append (the retried commands decided nothing) never blocks the log
 * for longer.
 */
export class HeadLock {
  private held: PgClientLike | null = null;
  /** What the lock's round trip read, kept for the catch-up that follows a conflict (see `keep`). */
  private kept: { readonly after: number; readonly read: LockedRead } | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly t: Tables,
    private readonly log: string,
  ) {}

  /**
   * Opens the transaction and locks the head row (waits for the append that holds it, if any);
   * returns the head and the first page of the events after `after`, read under the lock.
   */
  async take(client: PgClientLike, after: number): Promise<LockedRead> {
    const kept = this.kept;
    if (kept !== null && this.held === client && kept.after === after) {
      // Locked by the append that found the head moved: what it read is still the log's end.
      this.kept = null;
      return kept.read;
    }
    await this.release();
    const read = await lockAndRead(client, this.t, this.log, after);
    this.held = client;
    return read;
  }

  /**
   * An append locked the head and found it moved (a conflict): the lock stays for the catch-up,
   * which then takes `read` (the events after `after`) without a round trip, at most
   * {@link HOLD_MS} from now.
   */
  keep(after: number, read: LockedRead): void {
    this.kept = { after, read };
    this.expire();
  }

  /** The catch-up has read to the head: the lock waits {@link HOLD_MS} for the append. */
  expire(): void {
    if (this.held === null) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.release(), HOLD_MS);
    this.timer.unref();
  }

  /**
   * The append takes the open transaction (true): it must end it, COMMIT or ROLLBACK. Only on
   * the connection the lock was taken on: once that one was lost and replaced, the lock went with
   * its server process (or will), and `client` has no transaction open, so a statement sent
   * there as if it had one commits on its own (a batch's events apart from its consumers'
   * positions). The lock is then dropped and the append runs as one without it.
   */
  claim(client: PgClientLike): boolean {
    if (this.held === null) return false;
    if (this.held !== client) {
      // On the lost connection, which nothing sends to again: not waited for.
      void this.release(true);
      return false;
    }
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.held = null;
    this.kept = null;
    return true;
  }

  /**
   * Ends the transaction (nothing was written in it): the others may append. Resolves once the
   * server has answered (never rejects: a lost connection ends the transaction too); whoever
   * sends next on the connection waits for it, as pg queues a query sent while another is under
   * way only with a deprecation warning (pg 8.23), and pg 9 will refuse it.
   */
  release(rollback = false): Promise<void> {
    const client = this.held;
    if (client === null) return Promise.resolve();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.held = null;
    this.kept = null;
    return client.query(rollback ? 'ROLLBACK' : 'COMMIT').then(
      () => {},
      () => {},
    );
  }
}
