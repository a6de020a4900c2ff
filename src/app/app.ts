import { type Observable, Subject } from 'rxjs';
import type { CommandBus } from '../bus/command-bus';
import type { QueryBus } from '../bus/query-bus';
import { type AppliedEvent, appliedEvent, type EventMetadata } from '../events/event';
import { assertJsonValue, isJsonObject } from '../events/json';
import { KeyValueState, readonlyView } from '../state/key-value-state';
import type { ReadonlyKeyValueState } from '../state/readonly-state';
import type { Clock } from '../runtime/clock';
import {
  AppClosedError,
  CannotCompactError,
  ConsumerError,
  CommandRejected,
  InvalidEventError,
  LogCompactedError,
  LogLostError,
  PersistenceError,
  ProjectionsVersionError,
  UnknownCommandError,
} from '../errors';
import type {
  CompactionResult,
  ConsumerPosition,
  EventGroup,
  EventStore,
  ReplayEnd,
  StoreOpenInfo,
  StoreStats,
} from '../store/event-store';
import type { Logger } from '../runtime/logger';
import { CommandQueue } from './command-queue';
import type { CommandResult } from './command-result';
import { type CommitHost, Committer } from './commit';
import type { Projector } from './projector';
import { Recovery } from './recovery';
import { Reports } from './reports';
import { SnapshotVersionMismatch, StateLoader } from './state-loader';
import type { CommandTrace, Telemetry } from '../telemetry/telemetry';
import { ConsumerHub } from '../consumers/consumer-hub';
import { RecentGroups } from '../consumers/recent-groups';
import type { ConsumerHandler, ConsumerStart, SubscribeOptions, Subscription } from '../consumers/types';

export type { CommandResult } from './command-result';

/** The options of one `execute`. */
export interface ExecuteOptions {
  /** Logged with the command's events and handed back with each (a JSON object). */
  readonly metadata?: EventMetadata;
}

/** The App lifecycle: open → replay → ready → closing → closed; `failed` while the log cannot be written. */
export type AppStatus = 'opening' | 'replaying' | 'ready' | 'failed' | 'closing' | 'closed';

/** `app.stats()`: the app's own fields, and the store's (when it reports any) under `store`. */
export interface AppStats {
  readonly status: AppStatus;
  /** Keys in the state. */
  readonly keys: number;
  /** The last sequence number applied to the state (durable or not yet). */
  readonly lastSeq: number;
  /** The last sequence number the store has acknowledged as durable. */
  readonly durableSeq: number;
  /** Commands applied since the app started (not counting replay). */
  readonly commandsProcessed: number;
  /** Event groups (commands) replayed at start, after the snapshot. */
  readonly groupsReplayed: number;
  /** Snapshot entries (keys of the last compaction's base) loaded at start. */
  readonly entriesReplayed: number;
  /**
   * On a shared log: how many commands other writers have committed that this instance has not
   * applied yet, as far as it knows (the last head it saw).
   */
  readonly lag?: number;
  /** The store's status, when it has the `stats` capability. */
  readonly store?: StoreStats;
}

/**
 * A running appendonly application. Made by `createApp`, which opens the store and replays it.
 * It wires four parts: the command queue (decisions in dispatch order), the committer (apply,
 * append, acknowledge, resolve conflicts), the state loader (replay) and recovery (the failed
 * state).
 *
 * Delivery rule: `execute` resolves, and `events$` reports a command's events, once the store
 * says they are durable, with their final sequence numbers; `app.state` shows a command as soon
 * as it is applied, before it is durable, as Redis's memory runs ahead of its AOF. A command
 * whose append fails is rolled back (reloaded from the log) and never reported.
 */
export class App {
  private readonly stateView: ReadonlyKeyValueState;
  private readonly eventsSubject = new Subject<AppliedEvent>();
  private currentStatus: AppStatus = 'opening';
  private replayedGroups = 0;
  private replayedEntries = 0;
  private readonly closedError = new AppClosedError('the app is closed');
  private readonly committer: Committer;
  private readonly queue: CommandQueue;
  private readonly recovery: Recovery;
  private unwatch: (() => void) | null = null;
  /** The store's location, for messages (known once it is open). */
  private location = '';
  /** The last durable groups, and the signal consumers wait on. */
  private readonly recent = new RecentGroups();
  /** The one report path: in seq order, a catch-up's reports waiting for durability (`EventStore.flushed`). */
  private readonly reports = new Reports((group) => this.report(group));
  private readonly consumers: ConsumerHub;

  /** Applied events with their sequence numbers, once durable; live only (not during start-up replay). */
  readonly events$: Observable<AppliedEvent> = this.eventsSubject.asObservable();

  /** @internal Use `createApp`. */
  constructor(
    private readonly store: EventStore,
    private readonly kv: KeyValueState,
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly projector: Projector,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly skipUnknownEventTypes = false,
    /** The projections version (createApp's, as text); undefined: unversioned. */
    private readonly projectionsVersion: string | undefined = undefined,
    /** The observer (createApp's `telemetry`), or null. */
    private readonly telemetry: Telemetry | null = null,
  ) {
    this.stateView = readonlyView(kv);
    this.recovery = new Recovery({
      logger,
      isReady: () => this.currentStatus === 'ready',
      setFailed: (failed) => {
        if (failed) this.currentStatus = 'failed';
        else if (this.currentStatus === 'failed') this.currentStatus = 'ready';
      },
      repair: () => this.repair(),
    });
    const host: CommitHost = {
      kv,
      projector,
      store,
      clock,
      queue: null,
      reports: this.reports,
      failed: (err) => this.recovery.fail(err),
      refusal: () => this.recovery.failure,
      catchUp: (after, lock) => this.catchUp(after, lock),
    };
    const committer = new Committer(host);
    this.committer = committer;
    this.queue = new CommandQueue(
      commandBus,
      this.stateView,
      (output, handler, command, attempts, ticket, generation, metadata, trace, consumer) =>
        committer.commit(output, handler, command, attempts, ticket, generation, metadata, trace, consumer),
      () => this.recovery.failure,
      () => committer.generation,
    );
    committer.useQueue(this.queue);
    const shared = store.sharedLog === true;
    this.consumers = new ConsumerHub({
      store,
      recent: this.recent,
      logger,
      clock,
      // On a shared log a committed row is durable: a consumer reads up to what the store has.
      cap: () => (shared ? Number.POSITIVE_INFINITY : committer.durableSeq),
      head: async () =>
        shared && typeof store.head === 'function'
          ? Math.max(await store.head(), committer.durableSeq)
          : committer.durableSeq,
      knownHead: () => Math.max(committer.knownHead, committer.durableSeq),
      react: (commands, metadata, consumer) => this.react(commands, metadata, consumer),
      telemetry,
    });
  }

  /** The state, read-only. Reads never touch the store. */
  get state(): ReadonlyKeyValueState {
    return this.stateView;
  }

  /** Where the app is in its lifecycle. */
  get status(): AppStatus {
    return this.currentStatus;
  }

  /** Every command accepted for execution (observers only). */
  get commands$(): Observable<object> {
    return this.commandBus.commands$;
  }

  /** @internal Opens the store and replays it; the app is ready when this resolves. */
  async start(): Promise<StoreOpenInfo> {
    const version = this.projectionsVersion;
    const info = await this.store.open({
      snapshots: {
        // Every snapshot is of a state this app's projections computed (loaded from a snapshot of
        // the same version or an unversioned one, or rebuilt from the events): it carries the version.
        takeSnapshot: () => {
          const snapshot = this.kv.takeSnapshot(this.committer.lastSeq);
          return version === undefined ? snapshot : { ...snapshot, projectionsVersion: version };
        },
      },
      logger: this.logger,
      clock: this.clock,
      ...(this.telemetry?.fsync === undefined
        ? {}
        : { fsynced: (seconds: number) => this.telemetry?.fsync?.(seconds) }),
      ...(this.telemetry?.compaction === undefined
        ? {}
        : { compacting: () => this.telemetry?.compaction?.() }),
    });
    this.location = info.location;
    try {
      this.currentStatus = 'replaying';
      await this.load();
    } catch (err) {
      this.currentStatus = 'closed';
      await this.store.close().catch(() => {});
      throw err;
    }
    this.currentStatus = 'ready';
    this.watch();
    this.telemetry?.attach?.({ consumers: () => this.consumers.stats() });
    return info;
  }

  /** A shared log: follow the other writers' commands as the store says they come. */
  private watch(): void {
    if (typeof this.store.watch !== 'function') return;
    const committer = this.committer;
    this.unwatch = this.store.watch((head) => {
      if (head !== undefined) committer.knownHead = Math.max(committer.knownHead, head);
      if (this.currentStatus !== 'ready' || committer.catchesUpItself) return;
      committer.follow().catch((err: unknown) => {
        // A ProjectionsVersionError has failed the app already, and said so (see catchUp).
        if (!(err instanceof ProjectionsVersionError))
          this.logger.warn(`could not apply the other writers' commands: ${(err as Error).message}`);
      });
    });
  }

  /**
   * Resolves once this instance has applied everything committed before the call: its own
   * commands are durable and, on a shared log, every other writer's command is applied
   * (read-your-writes across instances). Rejects when the log cannot be read.
   */
  async sync(): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== null) throw refusal;
    const committer = this.committer;
    await committer.settled();
    if (typeof this.store.head !== 'function') return;
    if (this.queue.idle && committer.lastSeq === committer.durableSeq) {
      // Nothing is being decided or appended, so the pause of a catch-up holds nobody up: one
      // catch-up reads the head and what came before it (one round trip on PostgreSQL), where
      // reading the head first would be a round trip more for a follower that is behind.
      await committer.follow();
      const refused = this.refusal();
      if (refused !== null) throw refused;
      return;
    }
    // Commands flow: read the head first, and pause them only if there is something to apply.
    const head = await this.store.head();
    committer.knownHead = Math.max(committer.knownHead, head);
    // The log ends before what this instance applied (commits lost in a database crash): the
    // catch-up finds that out and reloads the log as it is.
    if (head < committer.durableSeq) await committer.follow();
    while (committer.durableSeq < head) {
      const before = committer.durableSeq;
      await committer.follow();
      const refused = this.refusal();
      if (refused !== null) throw refused;
      if (committer.durableSeq === before && committer.durableSeq < head) {
        throw new PersistenceError(
          `the log's head is ${head}, but reading it after seq ${before} gave nothing`,
          undefined,
        );
      }
    }
  }

  /**
   * Executes a command: its handler decides the events, the state applies them at once (the next
   * command sees them), and the promise resolves when they are durable per the store's policy.
   * Rejects with the handler's or a projection's error (nothing applied or logged), with
   * `UnknownCommandError`, `InvalidEventError`, `PersistenceError` or `AppClosedError`.
   *
   * `options.metadata` (a JSON object: correlation id, causation id, trace context, user fields)
   * is logged with the command's events and handed back with each of them: projections' third
   * argument, `events$`, replay. Not JSON: rejects with `InvalidEventError`, nothing applied.
   */
  execute(command: object, options?: ExecuteOptions): Promise<CommandResult> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const metadata = options?.metadata;
    if (metadata !== undefined) {
      if (!isJsonObject(metadata)) {
        try {
          assertJsonValue(metadata, 'the command metadata', 'metadata');
        } catch (err) {
          return Promise.reject(err);
        }
        return Promise.reject(new InvalidEventError('the command metadata must be a JSON object'));
      }
    }
    const trace = this.telemetry?.command?.(command.constructor?.name ?? typeof command, metadata);
    if (trace !== undefined) return this.traced(command, trace);
    return metadata === undefined ? this.queue.submit(command) : this.queue.submit(command, metadata);
  }

  /** `execute` under a trace: the trace's metadata (with its context) is what gets logged. */
  private traced(command: object, trace: CommandTrace): Promise<CommandResult> {
    let result: Promise<CommandResult>;
    try {
      result = trace.run(() => this.queue.submit(command, trace.metadata, trace));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(
      () => trace.durable(),
      (err: unknown) => trace.failed(err, isRefusal(err)),
    );
    return result;
  }

  /**
   * A consumer's reaction (see `ConsumerReaction`): decided in dispatch order as one command, its
   * events appended with the consumer's position as one unit. A store without the `reactions`
   * capability cannot keep the two together: refused with `ConsumerError`, nothing appended.
   * While closing, refused with `AppClosedError` (the consumer hands the event again next time).
   */
  private async react(
    commands: readonly object[],
    metadata: EventMetadata,
    consumer: ConsumerPosition,
  ): Promise<void> {
    if (this.store.reactions !== true)
      throw new ConsumerError(
        consumer.name,
        `its handler returned commands (a reaction) for seq ${consumer.position}, but the ${this.store.kind} store cannot append them with the consumer's position (no reactions capability)`,
      );
    const refusal = this.refusal();
    if (refusal !== null) throw refusal;
    await this.queue.react(commands, metadata, consumer);
  }

  /** Runs a query against the current state. Never logged. */
  query<TResult = unknown>(query: object): Promise<TResult> {
    if (this.currentStatus === 'closed') return Promise.reject(new AppClosedError('the app is closed'));
    return this.queryBus.execute<TResult>(query);
  }

  /**
   * Rewrites the log as the smallest set of records that rebuilds the state (BGREWRITEAOF);
   * commands keep flowing. Rejects with `CannotCompactError` on a store without compaction.
   */
  compact(): Promise<CompactionResult> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    if (typeof this.store.compact !== 'function') {
      return Promise.reject(new CannotCompactError(`the ${this.store.kind} store cannot compact its log`));
    }
    // Traced by the store's compaction scheduler (StoreContext.compacting), automatic ones too.
    return this.store.compact();
  }

  /**
   * Starts (or resumes) the durable consumer `name`: `handler` is called once per durable event
   * after its stored position, in log order, at least once (an event handled but not yet
   * checkpointed when the process dies is handed again: make the handler idempotent). A throwing
   * handler is retried with back-off, then the event is parked and the consumer goes on. `from`
   * applies the first time the name is seen. Rejects with `ConsumerError` when it cannot start
   * (see {@link SubscribeOptions}).
   *
   * The handler may return commands (a reaction, see `ConsumerReaction`): their events are
   * appended with the consumer's position as one unit, so a reaction is in the log exactly once
   * (side effects outside the log stay at least once).
   */
  subscribe(name: string, handler: ConsumerHandler, options?: SubscribeOptions): Promise<Subscription> {
    const refusal = this.refusal();
    if (refusal !== null && this.currentStatus !== 'failed') return Promise.reject(refusal);
    return this.consumers.subscribe(name, handler, options);
  }

  /** The running consumer of that name (subscribed here or through `createApp({ consumers })`). */
  consumer(name: string): Subscription | undefined {
    return this.consumers.get(name);
  }

  /** Stops the consumer `name` if it runs and forgets it: its position and its parked events. */
  removeConsumer(name: string): Promise<boolean> {
    if (this.currentStatus === 'closed') return Promise.reject(this.closedError);
    return this.consumers.remove(name);
  }

  /**
   * Moves the durable consumer `name` to `from` (as in `subscribe`: `'start'`, `'now'` or
   * `{ after: seq }`) and clears its stale mark, keeping its parked events; a consumer of that
   * name running in this app is stopped and started again with its handler and options. Rejects
   * with `ConsumerError` when the name has no record, or `from` is beyond the log or before
   * what compaction left.
   */
  resetConsumer(name: string, from: ConsumerStart): Promise<void> {
    if (this.currentStatus === 'closed') return Promise.reject(this.closedError);
    return this.consumers.reset(name, from);
  }

  /** The app's counters, and the store's status (like Redis's `INFO persistence`) under `store`. */
  stats(): AppStats {
    const committer = this.committer;
    const store = typeof this.store.stats === 'function' ? this.store.stats() : undefined;
    return {
      status: this.currentStatus,
      keys: this.kv.size,
      lastSeq: committer.lastSeq,
      durableSeq: committer.durableSeq,
      commandsProcessed: committer.processed,
      groupsReplayed: this.replayedGroups,
      entriesReplayed: this.replayedEntries,
      ...(typeof this.store.head === 'function' || typeof this.store.watch === 'function'
        ? { lag: Math.max(0, committer.knownHead - committer.durableSeq) }
        : {}),
      ...(store !== undefined ? { store } : {}),
    };
  }

  /**
   * Stops taking commands, lets those already dispatched finish, flushes and fsyncs the log and
   * releases it. Idempotent.
   */
  async close(): Promise<void> {
    if (this.currentStatus === 'closed' || this.currentStatus === 'closing') return;
    this.currentStatus = 'closing';
    // Consumers stop first and store their positions, while the store is still open.
    await this.consumers.closeAll();
    this.recovery.stop();
    this.committer.stopTurns();
    this.unwatch?.();
    this.unwatch = null;
    // Everything dispatched finishes: decisions, a conflict being resolved (its commands are in
    // no queue meanwhile), a catch-up, a recovery attempt under way, then the appends.
    // An append settling can start a conflict's resolution: go round until nothing is left.
    const quiet = () => this.queue.idle && !this.committer.busy && !this.recovery.attempting;
    do {
      for (let turn = 0; !quiet(); turn++) await pause(turn);
      await this.committer.settled();
    } while (!quiet());
    try {
      await this.store.close();
    } finally {
      this.currentStatus = 'closed';
      this.telemetry?.detach?.();
      this.eventsSubject.complete();
      this.commandBus.complete();
      this.kv.complete();
    }
  }

  /** @internal Tries once to leave the failed state; exported for tests through `App.prototype`. */
  recover(): Promise<void> {
    return this.recovery.attempt();
  }

  /** Why a new command is refused right now, or null. */
  private refusal(): Error | null {
    if (this.currentStatus === 'ready') return null;
    if (this.currentStatus === 'failed') return this.recovery.failure;
    return this.closedError;
  }

  /**
   * Builds the state from the whole log. A projection error or a bad log aborts the load. At
   * start it loads into the app's state; to reload (`into` a new state), the new state replaces
   * the current one only once whole, in the same turn as the seq: readers never see a state half
   * loaded, and a failed reload leaves the state and its seq as they were. (The old state and
   * the new are both in memory meanwhile, as Redis's `repl-diskless-load swapdb`.)
   *
   * The snapshot is loaded only if it matches the app's projections version (see
   * `snapshotMatches`); otherwise the state is rebuilt from every event (`replay({ after: 0 })`),
   * and when compaction dropped them the load is refused with `ProjectionsVersionError`.
   */
  private async load(into: KeyValueState = this.kv): Promise<void> {
    const trace = this.telemetry?.replay?.('load');
    if (trace === undefined) return this.loadInto(into);
    try {
      await this.loadInto(into);
    } catch (error) {
      trace.end({ error });
      throw error;
    }
    trace.end({ groups: this.replayedGroups, entries: this.replayedEntries });
  }

  private async loadInto(into: KeyValueState): Promise<void> {
    const version = this.projectionsVersion;
    const projector = into === this.kv ? this.projector : this.projector.over(into);
    const skip = this.skipUnknownEventTypes;
    let loader = new StateLoader(into, projector, skip, null, null, { projectionsVersion: version });
    let end: ReplayEnd;
    try {
      end = await this.store.replay(loader);
    } catch (err) {
      if (!(err instanceof SnapshotVersionMismatch)) throw err;
      this.logger.warn(
        `${this.location}: ${err.message}, and this app's projections are version ${JSON.stringify(version)}: ` +
          `not loading it; rebuilding the state from the events (the next compaction records a snapshot of version ${JSON.stringify(version)})`,
      );
      // The mismatch was found at the snapshot's first record: nothing of it reached the state.
      loader = new StateLoader(into, projector, skip);
      try {
        end = await this.store.replay(loader, { after: 0 });
      } catch (replayErr) {
        if (!(replayErr instanceof LogCompactedError)) throw replayErr;
        throw new ProjectionsVersionError(
          version!,
          err.snapshotVersion,
          err.seq,
          replayErr.firstAvailable,
          replayErr.where,
          { cause: replayErr },
        );
      }
    }
    if (into !== this.kv) this.kv.replaceWith(into);
    // What the ring holds may not be the log's any more (lost commits): consumers read the store.
    this.recent.clear();
    this.recent.poke();
    const committer = this.committer;
    committer.lastSeq = committer.durableSeq = Math.max(end.lastSeq, loader.lastSeq);
    // A reload after lost commits may find the log shorter than the head this instance had seen.
    committer.knownHead = committer.durableSeq;
    this.replayedGroups = loader.groups;
    this.replayedEntries = loader.entries;
    const snapshot = loader.snapshotInfo;
    if (version !== undefined && snapshot !== null && snapshot.projectionsVersion === undefined) {
      this.logger.info(
        `${this.location}: the snapshot up to seq ${snapshot.seq} has no projections version; loaded it under version ${JSON.stringify(version)}, which the next compaction records`,
      );
    }
    loader.reportSkipped(this.logger);
  }

  /**
   * Reports a durable group, in seq order, whoever committed it: to the consumers' ring and
   * signal, and on `events$` when it is observed.
   */
  private report(group: EventGroup): void {
    this.recent.push(group);
    const subject = this.eventsSubject;
    if (subject.observed) {
      const { seq, time, events, ids, versions, metadata } = group;
      for (let i = 0; i < events.length; i++)
        subject.next(appliedEvent(seq + i, time, events[i], ids![i], versions?.[i] ?? 1, metadata));
    }
  }

  /** Applies what other writers appended after `after`, reporting it on `events$`; resolves with the last seq. */
  private async catchUp(after: number, lock = false): Promise<number> {
    const trace = this.telemetry?.replay?.('catch-up');
    if (trace === undefined) return this.catchUpFrom(after, lock);
    const groups = this.committer.durableSeq;
    try {
      const head = await this.catchUpFrom(after, lock);
      trace.end({ groups: Math.max(0, head - groups), entries: 0 });
      return head;
    } catch (error) {
      trace.end({ error });
      throw error;
    }
  }

  private async catchUpFrom(after: number, lock: boolean): Promise<number> {
    const committer = this.committer;
    // What other writers committed may not be durable yet (see `EventStore.flushed`): applied
    // now, reported once it is. Kept only for a listener or a consumer (the ring), never for
    // nobody: a catch-up of millions of events then holds none of them.
    const flushed = this.store.flushed;
    const held: EventGroup[] | null =
      flushed !== undefined && (this.eventsSubject.observed || this.recent.keeping) ? [] : null;
    const loader = new StateLoader(
      this.kv,
      this.projector,
      this.skipUnknownEventTypes,
      (seq, time, events, ids, versions, metadata) => {
        const group: EventGroup =
          metadata === undefined
            ? { seq, time, events, ids, versions }
            : { seq, time, events, ids, versions, metadata };
        if (held !== null) held.push(group);
        else void this.reports.report(group);
      },
      after,
    );
    try {
      const end = await this.store.replay(loader, lock ? { after, lock } : { after });
      return Math.max(after, end.lastSeq, loader.lastSeq);
    } catch (err) {
      // What was applied stays applied and reported once: the next catch-up starts after it.
      if (loader.lastSeq > after) committer.lastSeq = committer.durableSeq = loader.lastSeq;
      // The commands after `after` survive only in a snapshot now (compacted), or the log no
      // longer has what this instance applied (lost in a database crash): load the log as it is,
      // into a new state swapped in whole (a failed reload leaves the state whole at its seq).
      if (!(err instanceof LogCompactedError || err instanceof LogLostError)) throw err;
      this.logger.warn(`${err.message}; reloading the state from the log`);
      try {
        await this.load(new KeyValueState());
      } catch (loadErr) {
        // Another version's snapshot and no events to rebuild from: this instance cannot follow
        // the log any more. It refuses commands (naming both versions) rather than decide them
        // on a state that stopped moving; that state is still whole at its durable seq.
        if (loadErr instanceof ProjectionsVersionError) this.recovery.fail(loadErr);
        throw loadErr;
      }
      return committer.durableSeq;
    } finally {
      if (held !== null && held.length > 0 && flushed !== undefined)
        void this.reports.whenReady(held, () =>
          flushed().catch((err: unknown) => {
            // Never reported: the log may not hold them (the reload that follows says what it does).
            this.logger.warn(
              `${held.length} command(s) of other writers, seq ${held[0].seq} to ${held[held.length - 1].seq}, applied but not reported on events$: ${(err as Error).message}`,
            );
            throw err;
          }),
        );
      loader.reportSkipped(this.logger);
    }
  }

  /** One recovery attempt: see `RecoveryHost.repair`. */
  private async repair(): Promise<void> {
    const committer = this.committer;
    await committer.quiet();
    await committer.settled();
    await this.store.recover?.();
    if (this.currentStatus !== 'failed') return;
    if (this.store.sharedLog === true) {
      // The committer rolled the state back to the durable seq already: read what others added.
      committer.lastSeq = committer.durableSeq = await this.catchUp(committer.durableSeq);
    } else {
      await this.load(new KeyValueState());
    }
    committer.recovered();
  }
}

/**
 * The wait between two looks of `App.close` at what is still under way: the next turns of the
 * event loop first (a close usually waits a few), then a timer that doubles up to 20 ms. What
 * it waits for may take long (a handler that has not settled, a recovery waiting for the
 * database), and a loop of turns alone would hold a core for all that time.
 */
function pause(turn: number): Promise<void> {
  if (turn < 8) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => setTimeout(resolve, Math.min(2 ** (turn - 8), 20)));
}

/** A command refused by its handler or its events' checks, as opposed to one the log failed. */
function isRefusal(err: unknown): boolean {
  return (
    err instanceof CommandRejected || err instanceof UnknownCommandError || err instanceof InvalidEventError
  );
}
