import { type Observable, Subject } from 'rxjs';
import type { CommandBus } from '../bus/command-bus';
import type { QueryBus } from '../bus/query-bus';
import type { AppliedEvent, DomainEvent } from '../events/event';
import { type KeyValueState, readonlyView } from '../state/key-value-state';
import type { ReadonlyKeyValueState } from '../state/readonly-state';
import type { Clock } from '../store/clock';
import { isKnownEventType } from '../events/event-registry';
import { AppClosedError, PersistenceError, ReplayFailedError, UnknownEventTypeError } from '../store/errors';
import type {
  CompactionResult,
  EventStore,
  ReplayGroup,
  ReplaySet,
  StoreOpenInfo,
  StoreStats,
} from '../store/event-store';
import type { Logger } from '../store/logger';
import { normalizeEvents } from './normalize-events';
import type { Projector } from './projector';

/** The App lifecycle: open → replay → ready → closing → closed; `failed` while the log cannot be written. */
export type AppStatus = 'opening' | 'replaying' | 'ready' | 'failed' | 'closing' | 'closed';

/** What `execute` resolves with once the command is applied and durable per the policy. */
export interface CommandResult {
  /** The events the command produced (possibly none). */
  readonly events: readonly DomainEvent[];
  /** The sequence number of the first event; the others follow one by one. With no events, the next number to be given. */
  readonly firstSeq: number;
  /** The sequence number of the last event; with no events, the last number given so far. */
  readonly lastSeq: number;
}

/** `app.stats()`: the store's persistence fields (like Redis's INFO persistence) and the app's own. */
export interface AppStats extends StoreStats {
  readonly status: AppStatus;
  /** Keys in the state. */
  readonly keys: number;
  /** Commands applied since the app started (not counting replay). */
  readonly commandsProcessed: number;
  /** Event groups (commands) replayed at start, after the snapshot. */
  readonly groupsReplayed: number;
  /** Snapshot entries (keys of the last compaction's base) loaded at start. */
  readonly entriesReplayed: number;
}

interface Queued {
  readonly command: object;
  readonly resolve: (result: CommandResult) => void;
  readonly reject: (err: unknown) => void;
}

/** How long a failed app waits between attempts to make its log writable again (Redis retries every second). */
const RECOVERY_INTERVAL_MS = 1000;

/**
 * A running appendonly application. Made by `createApp`, which opens the store and replays it.
 *
 * Invariants:
 * - commands are decided and applied one at a time, in dispatch order; the log order is the
 *   apply order, and `lastSeq` is always the last sequence number handed to the store;
 * - a command's events are applied and appended all or none;
 * - `execute` resolves only once the store says the events are durable per its policy, and
 *   acknowledgements come in dispatch order.
 */
export class App {
  private readonly stateView: ReadonlyKeyValueState;
  private readonly eventsSubject = new Subject<AppliedEvent>();
  private currentStatus: AppStatus = 'opening';
  private lastSeq = 0;
  private processed = 0;
  private replayedGroups = 0;
  private replayedEntries = 0;
  /** While set, commands reject with it: the log could not be written and has not recovered yet. */
  private failure: PersistenceError | null = null;
  private readonly closedError = new AppClosedError('the app is closed');
  /** True while an async handler runs: later commands wait in `queue`, keeping the total order. */
  private busy = false;
  private readonly queue: Queued[] = [];
  private lastDurable: Promise<void> = Promise.resolve();
  private recoveryTimer: NodeJS.Timeout | null = null;

  /** Applied events with their sequence numbers, live only (not during replay). */
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
  ) {
    this.stateView = readonlyView(kv);
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
    const info = await this.store.open({
      snapshots: { takeSnapshot: () => this.kv.takeSnapshot(this.lastSeq) },
      logger: this.logger,
      clock: this.clock,
    });
    try {
      await this.load();
    } catch (err) {
      this.currentStatus = 'closed';
      await this.store.close().catch(() => {});
      throw err;
    }
    this.currentStatus = 'ready';
    return info;
  }

  /**
   * Executes a command: its handler decides the events, the state applies them at once (the next
   * command sees them), and the promise resolves when they are durable per the store's policy.
   * Rejects with the handler's or a projection's error (nothing applied or logged), with
   * `UnknownCommandError`, `InvalidEventError`, `PersistenceError` or `AppClosedError`.
   */
  execute(command: object): Promise<CommandResult> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    if (this.busy) {
      return new Promise((resolve, reject) => {
        this.queue.push({ command, resolve, reject });
      });
    }
    return this.run(command);
  }

  /** Runs a query against the current state. Never logged. */
  query<TResult = unknown>(query: object): Promise<TResult> {
    if (this.currentStatus === 'closed') return Promise.reject(new AppClosedError('the app is closed'));
    return this.queryBus.execute<TResult>(query);
  }

  /** Rewrites the log as the smallest set of records that rebuilds the state (BGREWRITEAOF). Commands keep flowing. */
  compact(): Promise<CompactionResult> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    return this.store.compact();
  }

  /** Persistence status, like Redis's `INFO persistence`, and the app's counters. */
  stats(): AppStats {
    return {
      ...this.store.stats(),
      status: this.currentStatus,
      keys: this.kv.size,
      commandsProcessed: this.processed,
      groupsReplayed: this.replayedGroups,
      entriesReplayed: this.replayedEntries,
      lastSeq: this.lastSeq,
    };
  }

  /**
   * Stops taking commands, lets those already dispatched finish, flushes and fsyncs the log and
   * releases it. Idempotent.
   */
  async close(): Promise<void> {
    if (this.currentStatus === 'closed' || this.currentStatus === 'closing') return;
    this.currentStatus = 'closing';
    if (this.recoveryTimer !== null) clearTimeout(this.recoveryTimer);
    while (this.busy || this.queue.length > 0) await new Promise((r) => setImmediate(r));
    await this.lastDurable.catch(() => {});
    try {
      await this.store.close();
    } finally {
      this.currentStatus = 'closed';
      this.eventsSubject.complete();
      this.commandBus.complete();
      this.kv.complete();
    }
  }

  /** Why a new command is refused right now, or null. */
  private refusal(): Error | null {
    if (this.currentStatus === 'ready') return null;
    if (this.currentStatus === 'failed') return this.failure;
    return this.closedError;
  }

  private run(command: object): Promise<CommandResult> {
    let output: unknown;
    let handler: object;
    try {
      const h = this.commandBus.handlerFor(command);
      handler = h;
      output = h.execute(command, this.stateView);
    } catch (err) {
      return Promise.reject(err);
    }
    if (output !== null && typeof (output as { then?: unknown })?.then === 'function') {
      this.busy = true;
      return (output as Promise<unknown>).then(
        (events) => {
          this.busy = false;
          try {
            return this.commit(events, handler);
          } finally {
            this.drain();
          }
        },
        (err: unknown) => {
          this.busy = false;
          this.drain();
          throw err;
        },
      );
    }
    try {
      return this.commit(output, handler);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Runs queued commands until one of them is async again (it then calls back here). */
  private drain(): void {
    while (!this.busy && this.queue.length > 0) {
      const next = this.queue.shift()!;
      const result = this.failure !== null ? Promise.reject(this.failure) : this.run(next.command);
      result.then(next.resolve, next.reject);
    }
  }

  /** Applies the events atomically and hands them to the store. Synchronous up to the store's promise. */
  private commit(output: unknown, handler: object): Promise<CommandResult> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const events = normalizeEvents(output, handler);
    if (events.length === 0) {
      const result: CommandResult = { events, firstSeq: this.lastSeq + 1, lastSeq: this.lastSeq };
      return this.lastDurable.then(() => result);
    }
    const firstSeq = this.lastSeq + 1;
    const time = this.clock.now();
    const kv = this.kv;
    const projector = this.projector;
    // Without a journal, a change is reported as it is made and a failure (a Map full at 2^24
    // keys) would leave part of a command applied: so only one event, and no one listening.
    if (events.length === 1 && !kv.observed && projector.cannotFail(events[0])) {
      projector.apply(events[0], kv, firstSeq, time);
    } else {
      kv.begin();
      try {
        for (let i = 0; i < events.length; i++) projector.apply(events[i], kv, firstSeq + i, time);
      } catch (err) {
        kv.rollback();
        throw err;
      }
      kv.commit();
    }
    this.lastSeq += events.length;
    this.processed++;
    const durable = this.store.append({ seq: firstSeq, time, events });
    this.lastDurable = durable;
    if (this.eventsSubject.observed) {
      for (let i = 0; i < events.length; i++)
        this.eventsSubject.next({ seq: firstSeq + i, time, event: events[i] });
    }
    const result: CommandResult = { events, firstSeq, lastSeq: this.lastSeq };
    return durable.then(() => result, this.onAppendFailed);
  }

  /**
   * A write failed: refuse commands, and keep trying to make the log writable again; once it is,
   * reload the state from the log, so that it never shows what was not durable (point 4).
   */
  private readonly onAppendFailed = (err: unknown): never => {
    throw this.failed(err);
  };

  private failed(err: unknown): PersistenceError {
    const error = PersistenceError.from('the log could not be written', err);
    if (this.failure !== null) return this.failure;
    if (this.currentStatus !== 'ready') return error;
    this.currentStatus = 'failed';
    this.failure = error;
    this.logger.error(`${error.message}; refusing commands until the log can be written again`);
    this.scheduleRecovery();
    return error;
  }

  private scheduleRecovery(): void {
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = null;
      this.recover().catch(() => {
        if (this.currentStatus === 'failed') this.scheduleRecovery();
      });
    }, RECOVERY_INTERVAL_MS);
    this.recoveryTimer.unref();
  }

  /** @internal Tries once to leave the failed state; exported for tests through `App.prototype`. */
  async recover(): Promise<void> {
    if (this.currentStatus !== 'failed') return;
    await this.lastDurable.catch(() => {});
    await this.store.recover();
    if (this.currentStatus !== 'failed') return;
    this.kv.reset();
    this.lastSeq = 0;
    await this.load();
    this.currentStatus = 'ready';
    this.failure = null;
    this.lastDurable = Promise.resolve();
    this.logger.info('the log can be written again; accepting commands');
  }

  /** Rebuilds the state from the log. A projection error or a bad log aborts the load. */
  private async load(): Promise<void> {
    this.currentStatus = this.currentStatus === 'failed' ? 'failed' : 'replaying';
    const kv = this.kv;
    const projector = this.projector;
    let lastSeq = 0;
    let groups = 0;
    let entries = 0;
    const skipped = new Map<string, number>();
    for await (const batch of this.store.replay()) {
      for (let r = 0; r < batch.length; r++) {
        const record = batch[r];
        if (record.kind === 'group') {
          const events = record.events;
          for (let i = 0; i < events.length; i++) {
            const event = events[i];
            if (!isKnownEventType(event.type)) {
              if (!this.skipUnknownEventTypes)
                throw new UnknownEventTypeError(event.type, record.seq + i, positionOf(record));
              skipped.set(event.type, (skipped.get(event.type) ?? 0) + 1);
              continue;
            }
            try {
              projector.apply(event, kv, record.seq + i, record.time);
            } catch (err) {
              // The code and the log disagree: say which record, so the operator can find it.
              throw new ReplayFailedError(event.type, record.seq + i, positionOf(record), err);
            }
          }
          lastSeq = record.seq + events.length - 1;
          groups++;
        } else if (record.kind === 'set') {
          try {
            projector.applySet(record.key, record.value, kv, record.seq, record.time);
          } catch (err) {
            throw new ReplayFailedError('SET', record.seq, positionOf(record), err);
          }
          lastSeq = record.seq;
          groups++;
        } else if (record.kind === 'entry') {
          kv.load(record.key, record.value);
          entries++;
        } else {
          lastSeq = record.seq;
        }
      }
    }
    this.lastSeq = lastSeq;
    this.replayedGroups = groups;
    this.replayedEntries = entries;
    for (const [type, count] of skipped) {
      this.logger.warn(
        `skipped ${count} event(s) of type ${type}, which this app does not define (unknownEventTypes: 'skip')`,
      );
    }
  }
}

/** `file at byte offset N`, when the store said where the group is. */
function positionOf(group: ReplayGroup | ReplaySet): string | undefined {
  if (group.file === undefined) return undefined;
  return group.offset === undefined ? group.file : `${group.file} at byte offset ${group.offset}`;
}
