import type { CommandBus } from '../bus/command-bus';
import type { EventMetadata } from '../events/event';
import type { ReadonlyKeyValueState } from '../state/readonly-state';
import type { CommandTrace } from '../telemetry/telemetry';
import type { CommandResult } from './command-result';

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
  /** Pauses in force: a conflict being resolved and a catch-up may overlap. */
  private paused = 0;
  private waiting: Waiting[] = [];
  private nextTicket = 0;

  constructor(
    private readonly bus: CommandBus,
    private readonly state: ReadonlyKeyValueState,
    private readonly commit: CommitDecision,
    /** Why commands are refused right now (the log cannot be written), or null. */
    private readonly refusal: () => Error | null,
    /** Counts the conflicts resolved so far (see `Committer.generation`). */
    private readonly generation: () => number = () => 0,
  ) {}

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

  /** Decides these commands again, each at its place in dispatch order; `attempts` counts the decisions so far. */
  retry(commands: readonly Dispatched[]): Promise<CommandResult>[] {
    return commands.map((d) => this.enqueue(d.command, d.attempts, d.ticket, d.metadata, d.trace));
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
  ): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      const entry: Waiting = { command, attempts, ticket, metadata, trace, resolve, reject };
      const waiting = this.waiting;
      let i = waiting.length;
      while (i > 0 && waiting[i - 1].ticket > ticket) i--;
      if (i === waiting.length) waiting.push(entry);
      else waiting.splice(i, 0, entry);
    });
  }

  private run(
    command: object,
    attempts: number,
    ticket: number,
    metadata: EventMetadata | undefined,
    trace: CommandTrace | undefined,
  ): Promise<CommandResult> {
    let output: unknown;
    let handler: object;
    const generation = this.generation();
    trace?.decide(attempts);
    try {
      const h = this.bus.handlerFor(command);
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
      return (output as Promise<unknown>).then(
        (events) => {
          this.busy = false;
          trace?.decided();
          try {
            return this.commit(events, handler, command, attempts, ticket, generation, metadata, trace);
          } finally {
            this.drain();
          }
        },
        (err: unknown) => {
          this.busy = false;
          trace?.decided();
          this.drain();
          throw err;
        },
      );
    }
    trace?.decided();
    try {
      return this.commit(output, handler, command, attempts, ticket, generation, metadata, trace);
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
          : this.run(next.command, next.attempts, next.ticket, next.metadata, next.trace);
      result.then(next.resolve, next.reject);
    }
  }
}
