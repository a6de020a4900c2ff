import { createHash } from 'node:crypto';
import { readHead } from './append';
import { type HeldConnection, HoldOnce, letGo, Serial } from './connection';
import type { PgNotification, PgPoolLike } from './driver';
import type { Tables } from './schema';

/** How often the head row is polled, so that nothing depends on a NOTIFY arriving. */
export const POLL_MS = 200;

/**
 * Under a steady stream of commits, at most one NOTIFY per this many ms (the first commit after
 * a quiet spell is told at once; those that follow within the window are told together at its
 * end, with the last seq). A NOTIFY is a transaction of its own: sent after every append, it
 * took as much server CPU as the append itself (measured: 135 µs more per one-row append, on 2
 * cores) and nearly doubled a one-at-a-time writer's latency (p50 0.53 → 0.29 ms without it).
 * One per 10 ms still cost a bare store appending one at a time 8–10 % of its rate, one per 25
 * ms about 4 %, one per 50 ms nothing measurable (a scratch run of 2026-12-04, 2 cores, 20 ms
 * slices shuffled: 2,502 and 2,612 appends/s against 2,712 and 2,875 without NOTIFY; at 50 ms
 * 3,008 against 2,995). A follower hears at most this much later, as soon as Emmett's
 * PostgreSQL processors, which poll every 50 ms; `sync()` never waits on a NOTIFY (it reads the
 * head), and the head polls stay the backstop.
 */
export const NOTIFY_MS = 50;

/**
 * The NOTIFY window while this instance contends with others for the log (its appends lock the
 * head, see `CONTENDED_MS`). The instances that contend with it do not need the hint (each of
 * their appends reads, under the lock, everything committed before it, and they drop the hint
 * while one is due: `catchesUpItself`), yet each NOTIFY costs a transaction on the server and a
 * wake-up of every listening instance and its server process. Measured on 2 cores with 4
 * instances writing at once: the watchers' server processes took a fifth of the CPU of the
 * writers'. An instance that only follows hears of the contended log's commands this much later
 * at most; `sync()` does not depend on it.
 */
export const CONTENDED_NOTIFY_MS = 100;

/** The LISTEN/NOTIFY channel of one log: an identifier of fixed length, whatever the log's name. */
export function channelOf(schema: string, log: string): string {
  return `appendonly_${createHash('sha256').update(`${schema}\0${log}`).digest('hex').slice(0, 32)}`;
}

/**
 * Tells an instance that others appended. Two signals, either enough: a NOTIFY on the log's
 * channel, sent by the writer after its transaction committed (never inside it: NOTIFY takes a
 * database-wide lock held through COMMIT, which would serialise every appender on it), and a
 * poll of the head row every {@link POLL_MS}. `known` is the last head this instance has seen
 * (its own commits, its replays): only a head beyond it is news.
 *
 * It has its own connection, so that polls, `head()` and NOTIFYs never wait behind an append.
 * A lost connection is taken again on the next poll, which then reports a change (a NOTIFY may
 * have been missed meanwhile).
 */
export class HeadWatcher {
  known = 0;
  notifications = 0;
  polls = 0;
  private conn: HeldConnection | null = null;
  private readonly holds: HoldOnce;
  private listening = false;
  /** Who is told: the app, and anyone else watching the same store (a tool, a test). */
  private readonly watchers = new Set<(head?: number) => void>();
  private timer: NodeJS.Timeout | null = null;
  private notifying = false;
  private notifyAgain = false;
  /** Ends the window of the last NOTIFY (see {@link NOTIFY_MS}). */
  private notifyTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Polls, `head()` and NOTIFYs come from timers and callers independently: one at a time. */
  private readonly queries = new Serial();
  /** A connection was lost and not yet taken again: tell `reconnected` when it is. */
  private lost = false;
  private readonly channel: string;

  constructor(
    pool: PgPoolLike,
    private readonly t: Tables,
    private readonly log: string,
    /** Called when a lost connection was taken again. */
    private readonly reconnected: () => void = () => {},
    /** True while this instance contends for the log: NOTIFYs then go {@link CONTENDED_NOTIFY_MS} apart. */
    private readonly contended: () => boolean = () => false,
  ) {
    this.channel = channelOf(t.schema, log);
    this.holds = new HoldOnce(pool, () => this.closed, 'the head watcher');
  }

  /** The last sequence number committed by any writer (the head row). */
  async head(): Promise<number> {
    const conn = await this.connection();
    return this.queries.run(() => readHead(conn.client, this.t, this.log));
  }

  /**
   * Starts watching: `changed` is called (a hint) when the head may have moved beyond `known`,
   * with the head it saw (a poll's read, a NOTIFY's seq), or none when it knows none (a reconnect).
   */
  watch(changed: (head?: number) => void): () => void {
    const entry = (head?: number) => changed(head);
    this.watchers.add(entry);
    if (this.timer === null) {
      this.timer = setInterval(() => void this.poll(), POLL_MS);
      this.timer.unref();
      void this.poll();
    }
    return () => {
      this.watchers.delete(entry);
      if (this.watchers.size > 0 || this.timer === null) return;
      clearInterval(this.timer);
      this.timer = null;
    };
  }

  /** Tells every watcher, with the head seen when there is one. */
  private changed(head?: number): void {
    for (const watcher of this.watchers) watcher(head);
  }

  /**
   * This instance committed up to `seq`: tell the others, after the commit; one NOTIFY in flight
   * at most, and at most one per {@link NOTIFY_MS} ({@link CONTENDED_NOTIFY_MS} while contended;
   * what commits meanwhile is told at its end).
   */
  notify(seq: number): void {
    if (seq > this.known) this.known = seq;
    if (this.closed) return;
    if (this.notifying) {
      this.notifyAgain = true;
      return;
    }
    this.notifying = true;
    const sent = Date.now();
    void this.sendNotify().finally(() => {
      const next = () => {
        this.notifyTimer = null;
        this.notifying = false;
        if (this.notifyAgain) {
          this.notifyAgain = false;
          this.notify(this.known);
        }
      };
      const wait = sent + (this.contended() ? CONTENDED_NOTIFY_MS : NOTIFY_MS) - Date.now();
      if (wait <= 0 || this.closed) return next();
      this.notifyTimer = setTimeout(next, wait);
      this.notifyTimer.unref();
    });
  }

  /** Stops polling and gives the connection back. */
  close(): void {
    this.closed = true;
    if (this.notifyTimer !== null) clearTimeout(this.notifyTimer);
    this.notifyTimer = null;
    this.watchers.clear();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    letGo(this.conn);
    this.conn = null;
  }

  private async sendNotify(): Promise<void> {
    try {
      const conn = await this.connection();
      // Its own tiny transaction, not flushed: a NOTIFY is a hint, and must not cost an fsync.
      await this.queries.run(() =>
        conn.client.query("SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)", [
          this.channel,
          String(this.known),
        ]),
      );
    } catch {
      // The others poll: a lost NOTIFY only delays them by one poll.
    }
  }

  private async poll(): Promise<void> {
    if (this.watchers.size === 0 || this.closed) return;
    try {
      const reconnected = this.conn === null || this.conn.broken;
      const conn = await this.connection();
      if (this.lost) {
        this.lost = false;
        this.reconnected();
      }
      if (!this.listening) {
        await this.queries.run(() => conn.client.query(`LISTEN ${this.channel}`));
        this.listening = true;
      }
      this.polls++;
      const head = await this.queries.run(() => readHead(conn.client, this.t, this.log));
      // A head below what this instance knows: the log lost commits (a crash under
      // synchronous_commit = off), which the catch-up that follows finds out.
      if (head !== this.known || reconnected) this.changed(head);
    } catch {
      if (this.conn !== null) this.conn.broken = true;
    }
  }

  private async connection(): Promise<HeldConnection> {
    if (this.conn !== null && !this.conn.broken) return this.conn;
    return this.holds.take(
      () => {
        // Remembered until a connection is taken again, however many attempts that needs.
        if (this.conn !== null) this.lost = true;
        letGo(this.conn);
        this.conn = null;
        this.listening = false;
      },
      (conn) => {
        conn.client.on('notification', (message: PgNotification) => {
          if (message.channel !== this.channel) return;
          this.notifications++;
          const head = Number(message.payload);
          if (head > this.known) this.changed(head);
        });
        this.conn = conn;
      },
    );
  }
}
