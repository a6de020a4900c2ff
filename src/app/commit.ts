import type { DomainEvent, EventMetadata } from '../events/event';
import { newEventIds } from '../events/event-id';
import { currentEventVersion, hasVersionedTypes } from '../events/upcasters';
import type { KeyValueState } from '../state/key-value-state';
import type { Clock } from '../runtime/clock';
import type { Reports } from './reports';
import type { CommandTrace } from '../telemetry/telemetry';
import { AppendConflictError, ConsumerError, PersistenceError } from '../errors';
import type { ConsumerPosition, EventGroup, EventStore } from '../store/event-store';
import type { CommandQueue, Dispatched } from './command-queue';
import type { CommandResult } from './command-result';
import { normalizeEvents } from './normalize-events';
import type { Projector } from './projector';
import { Turns } from './turns';

/** Decisions of one command before its retries run out (the first included). */
export const MAX_DECISIONS = 10;

/** A command applied to the state whose append has not resolved yet (kept on a shared log only). */
interface InFlight extends Dispatched {
  /** The state's journal mark before the command: `rollbackTo(mark)` undoes it and every later one. */
  readonly mark: number;
  readonly durable: Promise<void>;
  /** Its next decision, once a conflict has put it back in the queue. */
  retried?: Promise<CommandResult>;
  /** A write failure rolled it back: its caller hears of the failure, nothing else. */
  dropped?: boolean;
}

/** A promise that never settles: the place of a conflict's redo until it is put back in the queue. */
const UNTIL_REQUEUED = new Promise<CommandResult>(() => {});

/** What the committer needs from the rest of the App. */
export interface CommitHost {
  readonly kv: KeyValueState;
  readonly projector: Projector;
  readonly store: EventStore;
  readonly clock: Clock;
  /** Where a conflict puts the commands back. Set once the queue exists. */
  queue: CommandQueue | null;
  /**
   * The App's one report path (the consumers' signal and ring, `events$`): every durable group
   * goes through it, in seq order, the other writers' commands included (see `Reports`).
   */
  readonly reports: Reports;
  /** A write failed: refuse commands and recover. Returns the error the command rejects with. */
  failed(err: unknown): Error;
  /** Why a command is refused right now, or null. */
  refusal(): Error | null;
  /**
   * Applies the commands after `after` that other writers appended; resolves with the new last
   * seq. With `lock`, the store holds the log for this instance's next append (see `Turns`).
   */
  catchUp(after: number, lock?: boolean): Promise<number>;
}

/**
 * The commit path: applies a decided command's events to the state all or none, gives them
 * their sequence numbers, hands them to the store, and resolves the command once the store says
 * they are durable. Then, and only then, `events$` reports them, with their final numbers.
 *
 * Invariants: `lastSeq` is the last number handed to the store and `durableSeq` the last whose
 * append resolved (`durableSeq <= lastSeq`); appends are made in sequence order and resolve in
 * it. On a shared log (the store has `sharedLog`), every command between the two keeps its undo
 * information, so that an `AppendConflictError` rolls back all of them at once, the other
 * writers' commands are applied, and the rolled-back commands are decided again in dispatch
 * order (a handler may therefore run more than once: it must be a pure decision over the state).
 */
export class Committer {
  lastSeq = 0;
  durableSeq = 0;
  processed = 0;
  /** Bumped by every conflict: a decision taken before it was taken on a state rolled back since. */
  generation = 0;
  private lastDurable: Promise<void> = Promise.resolve();
  private readonly retain: boolean;
  private readonly inflight: InFlight[] = [];
  private resolving: Promise<void> | null = null;
  /** The last head of a shared log seen (a catch-up's end, a hint from the store), for `lag`. */
  knownHead = 0;
  private following: Promise<void> | null = null;
  /** True while `following` may still go round again (see `follow`). */
  private looping = false;
  private followAgain = false;
  /** Decisions in turns while other writers contend for a shared log (set with the queue). */
  private turns: Turns | null = null;
  /** Sequence numbers of other writers applied by the last catch-up of `followLoop`. */
  private followed = 0;

  constructor(private readonly host: CommitHost) {
    this.retain = host.store.sharedLog === true;
  }

  /** The queue exists: on a shared log, decisions may go in turns. */
  useQueue(queue: CommandQueue): void {
    this.host.queue = queue;
    if (!this.retain) return;
    this.turns = new Turns({
      queue,
      settled: () => this.settled(),
      resolved: () => this.resolving?.catch(() => {}) ?? Promise.resolve(),
      refusal: () => this.host.refusal(),
      catchUpLocked: async () => {
        await this.follow(true);
        return this.followed;
      },
    });
  }

  /** Decisions go as they come again (the app closes). */
  stopTurns(): void {
    this.turns?.stop();
  }

  /**
   * True while a turn runs or is due: it reads the other writers' commands by itself, so a
   * follower's catch-up beside it would read them twice.
   */
  get catchesUpItself(): boolean {
    return this.turns?.catchesUpItself === true;
  }

  /** True while a conflict is resolved or a catch-up runs: the App's close and recovery wait. */
  get busy(): boolean {
    return this.resolving !== null || this.following !== null;
  }

  /** Resolves once no conflict is being resolved and no catch-up runs. */
  async quiet(): Promise<void> {
    while (this.resolving !== null || this.following !== null) {
      await (this.resolving ?? this.following)?.catch(() => {});
    }
  }

  /** Settles once every append made so far has. */
  settled(): Promise<void> {
    return this.lastDurable.catch(() => {});
  }

  /**
   * Applies what other writers have committed to a shared log. Decisions pause; once every
   * append in flight has settled (no replay may run beside an append), the commands after the
   * durable seq are read and applied (and reported on `events$`). A decision under way was
   * taken on the state before them: the generation moves, so it is decided again. A call while
   * one runs makes it go round once more; a conflict being resolved catches up by itself.
   *
   * With `lock` (a turn, see `Turns`), the catch-up holds the log for the next append: it waits
   * for a catch-up under way to end rather than join it, since that one took no lock.
   */
  async follow(lock = false): Promise<void> {
    if (lock) while (this.following !== null) await this.following.catch(() => {});
    // A run past its last round (`looping` false, `following` not yet cleared) would not go
    // round again for this call: a new run starts instead.
    if (this.following !== null && this.looping) {
      this.followAgain = true;
      return this.following;
    }
    const run = this.followLoop(lock);
    this.following = run;
    run
      .finally(() => {
        if (this.following === run) this.following = null;
      })
      .catch(() => {});
    return run;
  }

  private async followLoop(lock: boolean): Promise<void> {
    const host = this.host;
    const queue = host.queue!;
    this.followed = 0;
    this.looping = true;
    try {
      do {
        this.followAgain = false;
        if (host.refusal() !== null) return;
        queue.pause();
        try {
          // An async decision under way ends first, and appends (or meets its conflict): made
          // stale by this catch-up, it would be decided again, and a handler slower than the
          // other writers' commits come would be decided again at every one and never commit.
          await queue.decided();
          // From here a decision under way would be stale: none is (the queue is paused), and
          // one that ends in a conflict's resolution is decided again there.
          this.generation++;
          await this.settled();
          if (this.resolving !== null || this.inflight.length > 0) {
            await this.resolving?.catch(() => {});
            this.followAgain = true;
            continue;
          }
          if (host.refusal() !== null) return;
          const head = await host.catchUp(this.durableSeq, lock);
          this.knownHead = Math.max(this.knownHead, head);
          if (head > this.durableSeq) {
            this.followed += head - this.durableSeq;
            this.lastSeq = this.durableSeq = head;
          }
          // Read to the head under the lock: nothing can have committed since, a hint is old news.
          if (lock) this.followAgain = false;
        } finally {
          queue.resume();
        }
      } while (this.followAgain);
    } finally {
      // In the same step as the last round's end: a call of `follow` from here on starts a run.
      this.looping = false;
    }
  }

  /** The log is writable again: appends made from now on do not wait for the failed ones. */
  recovered(): void {
    this.lastDurable = Promise.resolve();
  }

  /** Applies the decision and appends it; resolves once durable. Synchronous up to the store's promise. */
  commit(
    output: unknown,
    handler: object,
    command: object,
    attempts: number,
    ticket: number,
    generation: number,
    metadata?: EventMetadata,
    trace?: CommandTrace,
    consumer?: ConsumerPosition,
  ): Promise<CommandResult> {
    const host = this.host;
    const refused = host.refusal();
    if (refused !== null) return Promise.reject(refused);
    if (generation !== this.generation) {
      // Decided (asynchronously) on a state that a conflict has rolled back since: decide again,
      // as many times as a conflict's commands are.
      if (attempts + 1 >= MAX_DECISIONS)
        return Promise.reject(gaveUp(new AppendConflictError('another instance appended first', undefined)));
      return host.queue!.retry([{ command, attempts: attempts + 1, ticket, metadata, trace, consumer }])[0];
    }
    if (consumer !== undefined && host.store.holdsConsumer?.(consumer.name) === false) {
      // Refused before anything is applied: a deposed consumer's reaction must never commit.
      return Promise.reject(
        new ConsumerError(consumer.name, 'no longer holds its name: its reaction is not appended'),
      );
    }
    const events = normalizeEvents(output, handler);
    if (events.length === 0)
      return this.nothingToAppend(events, command, attempts, ticket, metadata, trace, consumer);
    const firstSeq = this.lastSeq + 1;
    const time = host.clock.now();
    // The envelope is made once, here: a decision taken again after a conflict is a new command
    // in the log, with new ids; the ids of what is logged never change afterwards.
    const ids = newEventIds(events.length, time);
    const versions = versionsOf(events);
    const mark = this.apply(events, firstSeq, time, ids, versions, metadata);
    const lastSeq = firstSeq + events.length - 1;
    this.lastSeq = lastSeq;
    this.processed++;
    trace?.applied(firstSeq, lastSeq, events.length);
    const plain: EventGroup =
      versions === undefined
        ? metadata === undefined
          ? { seq: firstSeq, time, events, ids }
          : { seq: firstSeq, time, events, ids, metadata }
        : metadata === undefined
          ? { seq: firstSeq, time, events, ids, versions }
          : { seq: firstSeq, time, events, ids, versions, metadata };
    // A reaction's position travels to the store only: the ring and `events$` get the plain group.
    const durable = host.store.append(consumer === undefined ? plain : { ...plain, consumer });
    const group = plain;
    trace?.appended();
    this.lastDurable = durable;
    const result: CommandResult = { events, firstSeq, lastSeq };
    const entry: InFlight | null = this.retain
      ? { command, attempts, ticket, metadata, trace, consumer, mark, durable }
      : null;
    if (entry !== null) this.inflight.push(entry);
    return this.acknowledge(durable, group, result, entry);
  }

  /**
   * The command's promise: `result` once `durable` resolves, after the bookkeeping and the
   * report on `events$`. Apart from `commit` so that the callbacks hold these four values, not
   * every local of `commit` (V8 gives all of a function's captured variables one context, made
   * per call); without a shared log a failure needs nothing of the command, and one callback,
   * made once, serves every command.
   */
  private acknowledge(
    durable: Promise<void>,
    group: EventGroup,
    result: CommandResult,
    entry: InFlight | null,
  ): Promise<CommandResult> {
    return durable.then(
      () => {
        this.durableSeq = result.lastSeq;
        if (entry !== null) this.settle(entry);
        // Null: reported at once; else behind the other writers' commands a catch-up applied.
        const queued = this.host.reports.report(group);
        return queued === null ? result : queued.then(() => result);
      },
      entry === null
        ? this.appendFailed
        : (err: unknown) => {
            const host = this.host;
            // Part of a conflict being resolved: the resolution decides what becomes of it.
            if (entry.retried !== undefined) return this.afterResolving(entry);
            if (entry.dropped) throw host.refusal() ?? host.failed(err);
            if (err instanceof AppendConflictError) return this.conflict(entry, err);
            this.dropInflight();
            throw host.failed(err);
          },
    );
  }

  /** An append failed on a log of one writer: the app fails, the command rejects with why. */
  private readonly appendFailed = (err: unknown): never => {
    throw this.host.failed(err);
  };

  /**
   * A decision with no events: it resolves once everything before it is durable (it was decided
   * on those commands), and is decided again if they are refused for a conflict. On a shared log
   * with nothing in flight it was decided on the durable state, and resolves at once: the last
   * append may have been refused long since (a conflict resolved, its commands decided again),
   * and that refusal says nothing of this decision.
   */
  private nothingToAppend(
    events: readonly DomainEvent[],
    command: object,
    attempts: number,
    ticket: number,
    metadata: EventMetadata | undefined,
    trace: CommandTrace | undefined,
    consumer: ConsumerPosition | undefined,
  ): Promise<CommandResult> {
    const host = this.host;
    const result: CommandResult = { events, firstSeq: this.lastSeq + 1, lastSeq: this.lastSeq };
    if (this.retain && this.inflight.length === 0) return Promise.resolve(result);
    return this.lastDurable.then(
      () => result,
      (err: unknown) => {
        if (!this.retain || !(err instanceof AppendConflictError)) throw host.refusal() ?? host.failed(err);
        // Decided on the commands in flight: they were stale, so is this decision.
        if (attempts + 1 >= MAX_DECISIONS) throw gaveUp(err);
        return host.queue!.retry([{ command, attempts: attempts + 1, ticket, metadata, trace, consumer }])[0];
      },
    );
  }

  /** Applies the events atomically; returns the journal mark (shared log) or -1. */
  private apply(
    events: readonly DomainEvent[],
    firstSeq: number,
    time: number,
    ids: readonly string[],
    versions: readonly number[] | undefined,
    metadata: EventMetadata | undefined,
  ): number {
    const { kv, projector } = this.host;
    if (!this.retain && events.length === 1 && !kv.observed && projector.cannotFail(events[0])) {
      // Without a journal, a change is reported as it is made and a failure (a Map full at 2^24
      // keys) would leave part of a command applied: so only one event, and no one listening.
      projector.apply(events[0], firstSeq, time, ids[0], versions?.[0] ?? 1, metadata);
      return -1;
    }
    const mark = kv.begin(this.retain);
    try {
      for (let i = 0; i < events.length; i++)
        projector.apply(events[i], firstSeq + i, time, ids[i], versions?.[i] ?? 1, metadata);
    } catch (err) {
      kv.rollback();
      throw err;
    }
    kv.commit(this.retain);
    return mark;
  }

  /** The oldest command in flight is durable: its undo information goes. */
  private settle(entry: InFlight): void {
    const inflight = this.inflight;
    if (inflight[0] === entry) inflight.shift();
    this.host.kv.forget(inflight.length > 0 ? inflight[0].mark : Number.POSITIVE_INFINITY);
  }

  /** A write failed on a shared log: nothing in flight is in it, so the state goes back to the durable seq. */
  private dropInflight(): void {
    const all = this.inflight.splice(0);
    if (all.length === 0) return;
    for (const e of all) e.dropped = true;
    this.host.kv.rollbackTo(all[0].mark);
    this.lastSeq = this.durableSeq;
  }

  /**
   * Another writer appended first. The first conflict rolls back every command in flight (all
   * were decided on the stale state), waits for their appends to settle (the store rejects them
   * all), applies the other writers' commands, and puts them back in the queue to be decided
   * again; each of their promises follows its next decision.
   */
  private conflict(entry: InFlight, err: AppendConflictError): Promise<CommandResult> {
    const redo = this.inflight.splice(0);
    for (const r of redo) r.retried = UNTIL_REQUEUED;
    const resolving = this.resolveConflict(redo, err);
    this.resolving = resolving;
    // Another writer is appending: decide in turns for a while rather than race it again.
    this.turns?.contended();
    resolving.finally(() => {
      if (this.resolving === resolving) this.resolving = null;
    });
    return this.afterResolving(entry);
  }

  /** The entry's next decision, once the conflict it is part of is resolved. */
  private afterResolving(entry: InFlight): Promise<CommandResult> {
    return (this.resolving ?? Promise.resolve()).then(() => entry.retried!);
  }

  private async resolveConflict(redo: InFlight[], err: AppendConflictError): Promise<void> {
    const host = this.host;
    const queue = host.queue!;
    this.generation++;
    queue.pause();
    try {
      host.kv.rollbackTo(redo[0].mark);
      this.lastSeq = this.durableSeq;
      const settled = await Promise.allSettled(redo.map((r) => r.durable));
      // A write failure among them fails the app (recovery catches up later); an append that
      // landed after a conflict breaks the store's contract.
      for (const s of settled) {
        if (s.status === 'rejected' && !(s.reason instanceof AppendConflictError)) throw s.reason;
        if (s.status === 'fulfilled')
          throw new PersistenceError(
            'the store acknowledged an append after refusing an earlier one',
            undefined,
          );
      }
      // Back off before reading, not after: what is read stays fresh for the next decision.
      await backoff(redo[0].attempts);
      this.durableSeq = this.lastSeq = await host.catchUp(this.durableSeq);
    } catch (caught) {
      const error = host.failed(caught);
      for (const r of redo) {
        const rejected = Promise.reject(error);
        rejected.catch(() => {});
        r.retried = rejected;
      }
      queue.resume();
      return;
    }
    const again = redo.filter((r) => r.attempts + 1 < MAX_DECISIONS);
    const retried = queue.retry(
      again.map((r) => ({
        command: r.command,
        attempts: r.attempts + 1,
        ticket: r.ticket,
        metadata: r.metadata,
        trace: r.trace,
        consumer: r.consumer,
      })),
    );
    for (let i = 0; i < again.length; i++) {
      again[i].retried = retried[i];
      retried[i].catch(() => {}); // consumed by afterResolving; a rejection is its caller's
    }
    for (const r of redo) {
      if (r.attempts + 1 >= MAX_DECISIONS) {
        r.retried = Promise.reject(gaveUp(err));
        r.retried.catch(() => {});
      }
    }
    queue.resume();
  }
}

/** The conflict a command rejects with once its decisions have run out ({@link MAX_DECISIONS}). */
function gaveUp(err: AppendConflictError): AppendConflictError {
  return new AppendConflictError(`${err.message} (gave up after ${MAX_DECISIONS} decisions)`, err.head);
}

/**
 * The versions of a command's events when one of them is not at version 1, else undefined (the
 * group then logs none: most logs, and every key-value one, never pay for versions).
 */
function versionsOf(events: readonly DomainEvent[]): number[] | undefined {
  if (!hasVersionedTypes()) return undefined;
  let versions: number[] | undefined;
  for (let i = 0; i < events.length; i++) {
    const v = currentEventVersion(events[i].type);
    if (v !== 1 && versions === undefined) versions = new Array<number>(events.length).fill(1);
    if (versions !== undefined) versions[i] = v;
  }
  return versions;
}

/** Jittered exponential back-off between decisions of a conflicting command: none before the first retry. */
function backoff(attempts: number): Promise<void> {
  if (attempts === 0) return Promise.resolve();
  const ms = Math.random() * Math.min(100, 2 ** attempts);
  return new Promise((resolve) => setTimeout(resolve, ms));
}
