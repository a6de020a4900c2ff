import {
  AppClosedError,
  ConsumerError,
  LogCompactedError,
  PersistenceError,
  StaleConsumerError,
} from '../errors';
import { type AppliedEvent, appliedEvent, type EventMetadata } from '../events/event';
import { legacyEventId } from '../events/event-id';
import { currentEventVersion, isCurrentVersion, upcast } from '../events/upcasters';
import type { Logger } from '../runtime/logger';
import type { Clock } from '../runtime/clock';
import type {
  ConsumerLease,
  ConsumerPosition,
  ConsumerRecord,
  EventGroup,
  EventStore,
  ParkedEvent,
  ParkedEventCopy,
} from '../store/event-store';
import { retryDelay, sleep } from './backoff';
import type { Telemetry } from '../telemetry/telemetry';
import type { RecentGroups } from './recent-groups';
import type { ConsumerHandler, ConsumerStats, ConsumerStatus, Subscription } from './types';

/** How soon a read that fell short of the durable seq is tried again, in ms. */
const STALE_READ_RETRY_MS = 20;

/** How often a standby asks for the name again, in ms (with jitter, so standbys do not ask together). */
const STANDBY_RETRY_MS = 500;

/**
 * How long a holder that lost the name waits before it asks again, in ms: longer than a
 * standby's longest interval, so that a standby (whose session is healthy) takes over first.
 */
const DEPOSED_WAIT_MS = 4 * STANDBY_RETRY_MS;

/**
 * How a runner on a shared log (a store with `holdConsumer`) takes the name over: the lease,
 * then the record loaded (or made) under it; null while another instance holds the name.
 */
export type TakeOver = () => Promise<{ lease: ConsumerLease; record: ConsumerRecord } | null>;

/** A store with the consumer capabilities (checked by the hub before a runner is made). */
export type ConsumerCapableStore = EventStore &
  Required<Pick<EventStore, 'read' | 'loadConsumers' | 'saveConsumer' | 'deleteConsumer'>>;

/** What a runner needs from the App. */
export interface ConsumerSource {
  readonly store: ConsumerCapableStore;
  readonly recent: RecentGroups;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The highest seq a consumer may be handed now (the durable seq; Infinity on a shared log, whose rows are durable once read). */
  cap(): number;
  /** The last durable seq of the log now, as far as this instance can tell. */
  head(): Promise<number>;
  /** The last durable seq known without asking the store, for `lag`. */
  knownHead(): number;
  /**
   * Decides a reaction's commands and appends their events with `consumer` as one unit; resolves
   * once durable, rejects (nothing appended) when a command is refused or the store cannot react.
   */
  react(commands: readonly object[], metadata: EventMetadata, consumer: ConsumerPosition): Promise<void>;
  /** The app's observer, when it traces consumers (see `Telemetry.consume`). */
  readonly telemetry?: Telemetry | null;
}

/** The resolved options of one consumer. */
export interface RunnerOptions {
  readonly maxAttempts: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly pageSize: number;
  readonly checkpointEvery: number;
  readonly checkpointIntervalMs: number;
}

/**
 * One durable consumer's loop: read the durable events after its position in pages of at most
 * `pageSize` events (the recent ring, else the store's `read`), hand them to the handler one by
 * one in seq order, store the position after each page. Catch-up and live are one code path
 * (a position and reads after it), so there is no hand-over where an event could be skipped or
 * handed twice: the next event is always `position + 1`, and seqs are dense.
 *
 * Invariants: `position` only grows, one event at a time, and only after the handler resolved
 * for it (or it was parked); nothing past `cap()` is handed over; at most one read and one
 * handler call are in flight; a stored position is never ahead of `position`.
 *
 * On a shared log it runs only while it holds the name's lease: a standby (another instance
 * holds it) asks again every 1-2 × `STANDBY_RETRY_MS` (jittered); once it has the lease it
 * loads the stored record and resumes after it. When the lease is lost it hands nothing more
 * (not even the event it was about to hand), drops what it had not stored (the lease refuses the
 * save: the next holder hands those events again, at-least-once), waits `DEPOSED_WAIT_MS` and
 * goes back to standby.
 */
export class ConsumerRunner implements Subscription {
  position: number;
  private parked: ParkedEvent[];
  private saved: number;
  private parkedDirty = false;
  private retries = 0;
  /** When the position was last stored (the clock's ms). */
  private savedAt = 0;
  private status: ConsumerStatus = 'catching-up';
  private stopping = false;
  private abortSleep: (() => void) | null = null;
  private waiters: { target: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  private loop: Promise<void> | null = null;
  private failure: Error | null = null;
  /** The lease lost: stop handing at once (checked before each event and each wait). */
  private lost = false;

  /**
   * `lease` null with `takeOver`: a standby (`record` is then only what `stats` shows until it
   * takes over); both null: a store without leases (a single-process log).
   */
  constructor(
    readonly name: string,
    private readonly handler: ConsumerHandler,
    record: ConsumerRecord,
    private readonly source: ConsumerSource,
    private readonly options: RunnerOptions,
    private readonly onClosed: (runner: ConsumerRunner) => void,
    private lease: ConsumerLease | null = null,
    private readonly takeOver: TakeOver | null = null,
  ) {
    this.position = record.position;
    this.saved = record.position;
    this.parked = [...record.parked];
    if (lease !== null) this.watch(lease);
  }

  /** Starts it: at once when it runs (see `begin`); a standby starts waiting for the name. */
  async start(): Promise<void> {
    if (this.lease === null && this.takeOver !== null) {
      this.status = 'standby';
      this.loop = this.cycle(false);
      return;
    }
    // The loop is set before the retries of `begin` run, so that a close meanwhile waits for them.
    const begun = this.begin();
    this.loop = begun.then(
      () => this.cycle(true),
      () => {},
    );
    await begun;
  }

  /** Runs while it holds the name; when it loses the lease, waits as a standby and runs again. */
  private async cycle(running: boolean): Promise<void> {
    for (;;) {
      if (running) {
        try {
          await this.run();
        } catch (err) {
          // A checkpoint refused because a compaction marked the consumer stale (StaleConsumerError).
          this.fail(err as Error);
          return;
        }
      }
      if (this.stopping || this.failure !== null || this.takeOver === null) return;
      this.status = 'standby';
      if (running) await this.pause(DEPOSED_WAIT_MS, true);
      if (!(await this.waitForName())) return;
      try {
        await this.begin();
      } catch (err) {
        this.fail(err as Error);
        return;
      }
      running = !this.stopping;
    }
  }

  /** Asks for the name until it has it (true), or it is closed or failed (false). */
  private async waitForName(): Promise<boolean> {
    let failures = 0;
    while (!this.stopping) {
      let got: Awaited<ReturnType<TakeOver>> = null;
      try {
        got = await this.takeOver!();
        failures = 0;
      } catch (err) {
        if (err instanceof ConsumerError) {
          this.fail(err);
          return false;
        }
        failures++;
        this.source.logger.warn(
          `consumer ${JSON.stringify(this.name)}: taking it over failed (${(err as Error).message}); retrying`,
        );
        await this.pause(retryDelay(failures, this.options.retryDelayMs, this.options.maxRetryDelayMs), true);
        continue;
      }
      if (got !== null) {
        if (this.stopping) {
          await got.lease.release();
          return false;
        }
        this.lease = got.lease;
        this.lost = false;
        this.position = got.record.position;
        this.saved = got.record.position;
        this.parked = [...got.record.parked];
        this.parkedDirty = false;
        this.savedAt = this.source.clock.now();
        this.status = 'catching-up';
        this.watch(got.lease);
        this.source.logger.info(
          `consumer ${JSON.stringify(this.name)}: took it over, after its stored position ${this.position}`,
        );
        return true;
      }
      await this.pause(retryDelay(1, STANDBY_RETRY_MS * 2, STANDBY_RETRY_MS * 2), true);
    }
    return false;
  }

  /** Stops handing the moment the lease is lost (a wait is cut short, the loop woken). */
  private watch(lease: ConsumerLease): void {
    lease.onLost((err) => {
      if (this.lease !== lease) return;
      this.lost = true;
      this.lease = null;
      if (!this.stopping)
        this.source.logger.warn(
          `${err.message}; it stops handing events, and waits to take the name over again`,
        );
      this.abortSleep?.();
      this.source.recent.poke();
    });
  }

  /** Hands the parked events marked for retry to the handler again, then stores the record. */
  private async begin(): Promise<void> {
    const again = this.parked.filter((p) => p.retry === true);
    // An entry leaves the list once handled (or parked again by `deliver`); one whose handing
    // was cut short by a close stays, still marked for retry, for the next start.
    const handled = (p: (typeof again)[number]) => {
      this.parked = this.parked.filter((x) => x !== p);
      this.parkedDirty = true;
    };
    for (const p of again) {
      if (this.stopping) break;
      // The copy parked with it, so that compaction need not keep a dead letter's event; an entry
      // parked before copies were kept is looked up in the log.
      if (p.event !== undefined) {
        if (!(await this.deliver(fromCopy(p.seq, p.event)))) break;
        handled(p);
        continue;
      }
      const groups = await this.source.store.read(p.seq - 1, 1).catch((err: unknown) => {
        if (err instanceof LogCompactedError) return [];
        throw err;
      });
      const g = groups.find((x) => x.seq <= p.seq && p.seq < x.seq + x.events.length);
      if (g === undefined) {
        this.source.logger.warn(
          `consumer ${JSON.stringify(this.name)}: parked event seq ${p.seq} is no longer in the log; dropped`,
        );
        handled(p);
        continue;
      }
      // A retried dead letter is handed out of order (after later events): said in the docs.
      if (!(await this.deliver(consumerEvent(g, p.seq - g.seq)))) break;
      handled(p);
    }
    await this.checkpoint();
  }

  caughtUp(): Promise<void> {
    const ended = this.ended();
    if (ended !== null) return Promise.reject(ended);
    return this.source.head().then((target) => (this.position >= target ? undefined : this.waitFor(target)));
  }

  /** Why the consumer will not move again (closed or failed), or null while it runs. */
  private ended(): Error | null {
    if (this.failure !== null) return this.failure;
    return this.status === 'closed'
      ? new AppClosedError(`consumer ${JSON.stringify(this.name)} is closed`)
      : null;
  }

  /**
   * Resolves once the consumer reaches `target`. Refused once it ended: a close or a failure
   * settles the waiters there are, and one added after it would wait forever.
   */
  private waitFor(target: number): Promise<void> {
    const ended = this.ended();
    if (ended !== null) return Promise.reject(ended);
    return new Promise<void>((resolve, reject) => this.waiters.push({ target, resolve, reject }));
  }

  stats(): ConsumerStats {
    return {
      name: this.name,
      position: this.position,
      lag: Math.max(0, this.source.knownHead() - this.position),
      retries: this.retries,
      parked: this.parked.length,
      status: this.status,
    };
  }

  async close(): Promise<void> {
    if (this.stopping) {
      await this.loop;
      return;
    }
    this.stopping = true;
    this.abortSleep?.();
    this.source.recent.poke();
    try {
      await this.loop;
    } finally {
      await this.lease?.release();
      this.lease = null;
      this.status = 'closed';
      const closed = new AppClosedError(`consumer ${JSON.stringify(this.name)} was closed`);
      for (const w of this.waiters) w.reject(closed);
      this.waiters = [];
      this.onClosed(this);
    }
  }

  private async run(): Promise<void> {
    const recent = this.source.recent;
    let failures = 0;
    while (!this.stopping && !this.lost) {
      const seen = recent.version;
      const cap = this.source.cap();
      let groups: readonly EventGroup[] = [];
      if (this.position < cap) {
        try {
          groups =
            recent.read(this.position, this.options.pageSize) ??
            (await this.source.store.read(this.position, this.options.pageSize));
          failures = 0;
        } catch (err) {
          if (err instanceof LogCompactedError) {
            // Nothing holds the events of a consumer that is not stale, so a gap means it is.
            this.fail(
              new StaleConsumerError(
                this.name,
                `cannot read the events after its position ${this.position}: ${err.message}`,
                { cause: err },
              ),
            );
            return;
          }
          failures++;
          this.source.logger.warn(
            `consumer ${JSON.stringify(this.name)}: reading the log failed (${(err as Error).message}); retrying`,
          );
          await this.pause(retryDelay(failures, this.options.retryDelayMs, this.options.maxRetryDelayMs));
          continue;
        }
      }
      const before = this.position;
      try {
        await this.handle(groups, cap);
      } catch (err) {
        await this.checkpoint();
        this.fail(err as Error);
        return;
      }
      if (this.position === before && this.position < cap && cap !== Number.POSITIVE_INFINITY) {
        // Durable events the store did not hand yet (an AOF compaction switching files between the
        // manifest the read used and the one it will use): ask again shortly, not at the next
        // event, which may never come.
        await this.checkpoint();
        await this.pause(STALE_READ_RETRY_MS);
        continue;
      }
      if (this.position === before) {
        this.status = 'live';
        this.settleWaiters();
        if (this.stopping || this.lost) break;
        // Idle: store what is pending once the interval is up, unless events come first.
        const due = this.dirty
          ? this.savedAt + this.options.checkpointIntervalMs - this.source.clock.now()
          : -1;
        if (this.dirty && due <= 0) {
          await this.checkpoint();
          continue;
        }
        if (!this.dirty) {
          await recent.changed(seen);
          continue;
        }
        const timer = sleep(due);
        await Promise.race([recent.changed(seen), timer.done]);
        timer.abort();
        continue;
      }
      if (
        this.parkedDirty ||
        this.position - this.saved >= this.options.checkpointEvery ||
        this.source.clock.now() - this.savedAt >= this.options.checkpointIntervalMs
      )
        await this.checkpoint();
    }
    if (!this.lost) await this.checkpoint();
  }

  /** Something handled (or parked) is not stored yet. */
  private get dirty(): boolean {
    return this.position !== this.saved || this.parkedDirty;
  }

  /** Hands the page's events after the position, up to `cap`, one by one. */
  private async handle(groups: readonly EventGroup[], cap: number): Promise<void> {
    for (const g of groups) {
      for (let i = 0; i < g.events.length; i++) {
        const seq = g.seq + i;
        if (seq <= this.position) continue;
        if (seq > cap || this.stopping || this.lost) return;
        if (seq !== this.position + 1) {
          // Cannot happen with dense seqs; checked so that a broken store is loud, never a skip.
          throw new ConsumerError(this.name, `the log handed seq ${seq} after ${this.position}: a gap`);
        }
        if (this.status !== 'retrying')
          this.status = this.position + 1 < this.source.knownHead() ? 'catching-up' : 'live';
        const handled = await this.deliver(consumerEvent(g, i));
        if (!handled) return; // stopped during a retry's wait: the event is handed again next time
        this.position = seq;
        this.settleWaiters();
      }
    }
  }

  /** Calls the handler with retries; parks the event after the last attempt. False: stopped before it was done. */
  private async deliver(event: AppliedEvent): Promise<boolean> {
    const o = this.options;
    for (let attempt = 1; ; attempt++) {
      const trace = this.source.telemetry?.consume?.(this.name, event);
      try {
        const reaction = await (trace === undefined
          ? this.handler(event)
          : trace.run(() => this.handler(event)));
        // The position goes into the log with the reaction: a crash before this resolves hands
        // the event again (and nothing of the reaction is in the log), one after it does not.
        const commands = reactionCommands(this.name, reaction);
        if (commands.length > 0 && !(await this.react(commands, event))) {
          trace?.end();
          return false;
        }
        trace?.end();
        if (this.status === 'retrying') this.status = 'catching-up';
        return true;
      } catch (err) {
        trace?.end(err);
        // Refused because the app is closing: not a failure of the event, which is handed again.
        if (this.stopping && err instanceof AppClosedError) return false;
        const message = err instanceof Error ? err.message : String(err);
        if (attempt >= o.maxAttempts) {
          this.parked.push({
            seq: event.seq,
            type: event.event.type,
            error: message,
            attempts: attempt,
            parkedAt: this.source.clock.now(),
            event: copyOf(event),
          });
          this.parkedDirty = true;
          this.source.logger.warn(
            `consumer ${JSON.stringify(this.name)}: event ${event.event.type} (seq ${event.seq}) failed ${attempt} times (${message}); parked`,
          );
          if (this.status === 'retrying') this.status = 'catching-up';
          return true;
        }
        this.retries++;
        this.status = 'retrying';
        if (this.stopping || this.lost) return false;
        await this.pause(retryDelay(attempt, o.retryDelayMs, o.maxRetryDelayMs));
        if (this.stopping || this.lost) return false;
      }
    }
  }

  /**
   * Appends a reaction with the event's position. While the app cannot write its log (it is
   * failed: a full disk, a lost database, `PersistenceError`), the event is not at fault: the
   * same commands are tried again after a back-off, for as long as it lasts, without counting an
   * attempt, so that a brief outage parks nothing. A failed append may still have committed (a
   * connection lost after COMMIT): before each new try, a stored position at the event's seq
   * says it did, and it is not appended twice. False when a close or a lost lease ends the wait;
   * the event is handed again then.
   */
  private async react(commands: readonly object[], event: AppliedEvent): Promise<boolean> {
    const position = { name: this.name, position: event.seq };
    for (let wait = 0; ; wait++) {
      // An unreadable record (null) means the log is still out of reach: wait again.
      const stored = wait === 0 ? 0 : await this.storedPosition().catch(() => null);
      if (stored !== null && stored >= event.seq) return true;
      if (stored !== null) {
        try {
          await this.source.react(commands, reactionMetadata(event), position);
          return true;
        } catch (err) {
          if (!(err instanceof PersistenceError)) throw err;
          if (wait === 0)
            this.source.logger.warn(
              `consumer ${JSON.stringify(this.name)}: the reaction to seq ${event.seq} cannot be logged (${err.message}); waiting for the log`,
            );
        }
      }
      this.retries++;
      this.status = 'retrying';
      if (this.stopping || this.lost) return false;
      await this.pause(retryDelay(wait + 1, this.options.retryDelayMs, this.options.maxRetryDelayMs));
      if (this.stopping || this.lost) return false;
    }
  }

  /** The position the store holds for this consumer (a reaction's append moves it). */
  private async storedPosition(): Promise<number> {
    const records = await this.source.store.loadConsumers();
    return records.find((r) => r.name === this.name)?.position ?? 0;
  }

  private async pause(ms: number, unref = false): Promise<void> {
    // Closing: a wait begun after `close` woke the last one would hold the close for all of `ms`.
    if (this.stopping) return;
    const s = sleep(ms, unref);
    this.abortSleep = s.abort;
    await s.done;
    this.abortSleep = null;
  }

  /** Stores the position (and the parked list) when either changed since the last store. */
  private async checkpoint(): Promise<void> {
    if (this.position === this.saved && !this.parkedDirty) return;
    if (this.lost) return; // deposed: the lease would refuse it; the next holder hands these again
    const position = this.position;
    this.parkedDirty = false;
    const record: ConsumerRecord = { name: this.name, position, parked: [...this.parked] };
    const lease = this.lease;
    try {
      await (lease !== null ? lease.save(record) : this.source.store.saveConsumer(record));
      this.saved = position;
      this.savedAt = this.source.clock.now();
    } catch (err) {
      if (lease !== null && !lease.held) {
        // Refused: the lease was lost (its onLost set `lost`, and the loop stops handing).
        this.lost = true;
        if (this.lease === lease) this.lease = null;
        return;
      }
      // A compaction's stale mark is final until a reset: the loop stops on it.
      if (err instanceof StaleConsumerError) throw err;
      // Not stored: the events since the last checkpoint are handed again after a restart
      // (at-least-once); the next checkpoint tries again, an interval later, not at once: a store
      // that keeps refusing must not turn the idle loop into a spin that starves the process.
      this.parkedDirty = true;
      this.savedAt = this.source.clock.now();
      this.source.logger.warn(
        `consumer ${JSON.stringify(this.name)}: storing its position failed: ${(err as Error).message}`,
      );
    }
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const left = [];
    for (const w of this.waiters) {
      if (this.position >= w.target) w.resolve();
      else left.push(w);
    }
    this.waiters = left;
  }

  private fail(err: Error): void {
    this.failure = err;
    this.status = err instanceof StaleConsumerError ? 'stale' : 'failed';
    this.source.logger.error(err.message);
    for (const w of this.waiters) w.reject(err);
    this.waiters = [];
  }
}

/** What a parked entry keeps of its event (JSON, as the records are stored). */
function copyOf(e: AppliedEvent): ParkedEventCopy {
  return {
    type: e.event.type,
    data: e.event.data,
    version: e.version,
    id: e.id,
    time: e.time,
    ...(e.metadata !== undefined ? { metadata: e.metadata } : {}),
  };
}

/** A parked copy as the handler gets it again (already at its version of then: upcast if it moved). */
function fromCopy(seq: number, c: ParkedEventCopy): AppliedEvent {
  const data = isCurrentVersion(c.type, c.version) ? c.data : upcast(c.type, c.version, c.data, `seq ${seq}`);
  return appliedEvent(seq, c.time, { type: c.type, data }, c.id, currentEventVersion(c.type), c.metadata);
}

/**
 * The commands a handler's result holds: none for nothing (or a value that is not an object,
 * which handlers written before reactions may return by accident), one for an object, the
 * elements of an array.
 */
function reactionCommands(name: string, result: unknown): readonly object[] {
  if (result === undefined || result === null || typeof result !== 'object') return [];
  if (!Array.isArray(result)) return [result];
  for (let i = 0; i < result.length; i++)
    if (result[i] === null || typeof result[i] !== 'object')
      throw new ConsumerError(
        name,
        `its handler returned an array holding ${String(result[i])} at index ${i}, not a command`,
      );
  return result as readonly object[];
}

/**
 * A reaction's metadata (what sagas and reactors carry): `causationId` the triggering event's
 * id, `correlationId` the triggering event's own `correlationId`, else its id (the first event of
 * a chain starts it).
 */
function reactionMetadata(event: AppliedEvent): EventMetadata {
  const correlation = event.metadata?.correlationId;
  return {
    correlationId: typeof correlation === 'string' ? correlation : event.id,
    causationId: event.id,
  };
}

/**
 * The `i`th event of a group as the handler gets it: at its type's current version (a group read
 * from the store is as logged, and is upcast here; one from the App's ring is current already),
 * with its id (derived from its seq for an event logged before ids existed) and metadata.
 */
function consumerEvent(group: EventGroup, i: number): AppliedEvent {
  const seq = group.seq + i;
  const logged = group.events[i];
  const version = group.versions?.[i] ?? 1;
  const event = isCurrentVersion(logged.type, version)
    ? logged
    : { type: logged.type, data: upcast(logged.type, version, logged.data, `seq ${seq}`) };
  return appliedEvent(
    seq,
    group.time,
    event,
    group.ids?.[i] ?? legacyEventId(seq),
    currentEventVersion(logged.type),
    group.metadata,
  );
}
