import type { CommandBus } from '../bus/command-bus';
import type { ICommandHandler } from '../decorators/command-handler';
import type { DomainEvent, EventMetadata } from '../events/event';
import type { ReadonlyKeyValueState } from '../state/readonly-state';
import type { ConsumerPosition } from '../store/event-store';
import type { CommandTrace } from '../telemetry/telemetry';
import type { CommandResult } from './command-result';
import { normalizeEvents } from './normalize-events';

/** A command to decide (again): its place in dispatch order and its decisions so far. */
export interface Dispatched {
  readonly command: object;
  /** Decisions made so far (0 the first time). */
  readonly attempts: number;
  /** Its place in dispatch order: retries keep it, so they go back where they were. */
  readonly ticket: number;
  /** The metadata it was executed with, logged with its events (every decision's). */
  readonly metadata?: EventMetadata;
  /** Its trace, when an observer traces it (every decision's). */
  readonly trace?: CommandTrace;
  /** A reaction's: the consumer position appended with its events (every decision's). */
  readonly consumer?: ConsumerPosition;
}

/**
 * @internal A consumer's reaction, queued as one decision: its commands are decided by their
 * own handlers, in order, each on the state as it is when the reaction is decided (they do not
 * see one another's events, as the events of one command do not), and their events form one
 * group, so that they and the consumer's position are one unit in the log.
 */
export class Reaction {
  constructor(readonly commands: readonly object[]) {}
}

/** Decides a {@link Reaction}: the handler the queue calls for it. */
class ReactionHandler {
  constructor(private readonly bus: CommandBus) {}

  execute(reaction: Reaction, state: ReadonlyKeyValueState): DomainEvent[] | Promise<DomainEvent[]> {
    return decideFrom(this.bus, reaction.commands, 0, [], state);
  }
}

/** Decides `commands[from…]` into `events`; synchronous until a handler returns a promise. */
function decideFrom(
  bus: CommandBus,
  commands: readonly object[],
  from: number,
  events: DomainEvent[],
  state: ReadonlyKeyValueState,
): DomainEvent[] | Promise<DomainEvent[]> {
  for (let i = from; i < commands.length; i++) {
    const handler: ICommandHandler = bus.handlerFor(commands[i]);
    const output: unknown = handler.execute(commands[i], state);
    if (output !== null && typeof (output as { then?: unknown })?.then === 'function') {
      return (output as Promise<unknown>).then((o) => {
        for (const e of normalizeEvents(o, handler)) events.push(e);
        return decideFrom(bus, commands, i + 1, events, state);
      });
    }
    for (const e of normalizeEvents(output, handler)) events.push(e);
  }
  return events;
}

/** What the queue hands a decision to: applies it and resolves when it is durable. */
export type CommitDecision = (
  output: unknown,
  handler: object,
  command: object,
  attempts: number,
  ticket: number,
  /** `generation()` when the decision started: a conflict since then makes it stale. */
  generation: number,
  metadata: EventMetadata | undefined,
  trace: CommandTrace | undefined,
  consumer: ConsumerPosition | undefined,
) => Promise<CommandResult>;

interface Waiting extends Dispatched {
  readonly resolve: (result: CommandResult) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Decides commands one at a time, in dispatch order: the handler sees the state with every
 * earlier command applied. A synchronous handler runs at once; while an async one runs, later
 * commands wait here, and so they do while the queue is paused (a conflict being resolved).
 *
 * Invariant: `waiting` is sorted by ticket. `retry` puts commands back by their ticket, so a
 * command decided again is decided before every command dispatched after it, whichever of them
 * was put back first.
 */
export class CommandQueue {
  private busy = false;
  /** Resolves once the async decision under way (while `busy`) has ended and gone to `commit`. */
  private deciding: Promise<void> = Promise.resolve();
  /** Pauses in force: a conflict being resolved and a catch-up may overlap. */
  private paused = 0;
  private waiting: Waiting[] = [];
  private nextTicket = 0;
  private readonly reactions: ReactionHandler;
  /** Told when a command starts to wait (decisions in turns, see `Turns`). */
  whenWaiting: (() => void) | null = null;

  constructor(
    private readonly bus: CommandBus,
    private readonly state: ReadonlyKeyValueState,
    private readonly commit: CommitDecision,
    /** Why commands are refused right now (the log cannot be written), or null. */
    private readonly refusal: () => Error | null,
    /** Counts the conflicts resolved so far (see `Committer.generation`). */
    private readonly generation: () => number = () => 0,
  ) {
    this.reactions = new ReactionHandler(bus);
  }

  /** Commands waiting to be decided. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /**
   * Resolves once the async decision under way, if any, has ended: its outcome has gone to
   * `commit` (appended, or put back to be decided again). Not its durability: a wait for that
   * could outlast a pause that holds its retry.
   */
  decided(): Promise<void> {
    return this.busy ? this.deciding : Promise.resolve();
  }

  /** True while nothing is being decided or waits. */
  get idle(): boolean {
    return !this.busy && this.waiting.length === 0;
  }

  /** Decides `command` now, or after those before it. */
  submit(command: object, metadata?: EventMetadata, trace?: CommandTrace): Promise<CommandResult> {
    // No object per command on this path: the ticket travels as a number.
    const ticket = this.nextTicket++;
    if (this.busy || this.paused > 0 || this.waiting.length > 0)
      return this.enqueue(command, 0, ticket, metadata, trace);
    return this.run(command, 0, ticket, metadata, trace);
  }

  /**
   * Decides a consumer's reaction in dispatch order, as one command: its events and `consumer`
   * (the position) are appended as one group. Rejects as a command does (nothing appended).
   */
  react(
    commands: readonly object[],
    metadata: EventMetadata,
    consumer: ConsumerPosition,
  ): Promise<CommandResult> {
    const ticket = this.nextTicket++;
    const reaction = new Reaction(commands);
    if (this.busy || this.paused > 0 || this.waiting.length > 0)
      return this.enqueue(reaction, 0, ticket, metadata, undefined, consumer);
    return this.run(reaction, 0, ticket, metadata, undefined, consumer);
  }

  /**
   * Decides these commands again, each at its place in dispatch order; `attempts` counts the
   * decisions so far. Decided at once when nothing runs and nothing pauses the queue (a retry
   * from a promise's callback): put back and left, they would wait for a drain that no call
   * makes, and every command submitted after them behind them.
   */
  retry(commands: readonly Dispatched[]): Promise<CommandResult>[] {
    const retried = commands.map((d) =>
      this.enqueue(d.command, d.attempts, d.ticket, d.metadata, d.trace, d.consumer),
    );
    this.drain();
    return retried;
  }

  /** Stops deciding (what is being decided finishes) until every `pause` has had its `resume`. */
  pause(): void {
    this.paused++;
  }

  resume(): void {
    this.paused--;
    this.drain();
  }

  private enqueue(
    command: object,
    attempts: number,
    ticket: number,
    metadata: EventMetadata | undefined,
    trace: CommandTrace | undefined,
    consumer?: ConsumerPosition,
  ): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const entry: Waiting = { command, attempts, ticket, metadata, trace, consumer, resolve, reject };
      const waiting = this.waiting;
      let i = waiting.length;
      while (i > 0 && waiting[i - 1].ticket > ticket) i--;
      if (i === waiting.length) waiting.push(entry);
      else waiting.splice(i, 0, entry);
      this.whenWaiting?.();
    });
  }

  private run(
    command: object,
    attempts: number,
    ticket: number,
    metadata: EventMetadata | undefined,
    trace: CommandTrace | undefined,
    consumer?: ConsumerPosition,
  ): Promise<CommandResult> {
    let output: unknown;
    let handler: object;
    const generation = this.generation();
    trace?.decide(attempts);
    try {
      const h: ICommandHandler = command instanceof Reaction ? this.reactions : this.bus.handlerFor(command);
      handler = h;
      output =
        trace === undefined
          ? h.execute(command, this.state)
          : trace.run(() => h.execute(command, this.state));
    } catch (err) {
      trace?.decided();
      return Promise.reject(err);
    }
    if (output !== null && typeof (output as { then?: unknown })?.then === 'function') {
      this.busy = true;
      let ended!: () => void;
      this.deciding = new Promise<void>((resolve) => {
        ended = resolve;
      });
      return (output as Promise<unknown>).then(
        (events) => {
          this.busy = false;
          // Whoever waits in `decided` goes on after this callback, `commit` called.
          ended();
          trace?.decided();
          try {
            return this.commit(
              events,
              handler,
              command,
              attempts,
              ticket,
              generation,
              metadata,
              trace,
              consumer,
            );
          } finally {
            this.drain();
          }
        },
        (err: unknown) => {
          this.busy = false;
          ended();
          trace?.decided();
          this.drain();
          throw err;
        },
      );
    }
    trace?.decided();
    try {
      return this.commit(output, handler, command, attempts, ticket, generation, metadata, trace, consumer);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Runs waiting commands until one is async again (it calls back here) or the queue pauses. */
  private drain(): void {
    while (!this.busy && this.paused === 0 && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      const refused = this.refusal();
      const result =
        refused !== null
          ? Promise.reject(refused)
          : this.run(next.command, next.attempts, next.ticket, next.metadata, next.trace, next.consumer);
      result.then(next.resolve, next.reject);
    }
  }
}
