import type { CommandBus } from '../bus/command-bus';
import type { ReadonlyKeyValueState } from '../state/readonly-state';
import type { CommandResult } from './command-result';

/** What the queue hands a decision to: applies it and resolves when it is durable. */
export type CommitDecision = (
  output: unknown,
  handler: object,
  command: object,
  attempts: number,
  /** `generation()` when the decision started: a conflict since then makes it stale. */
  generation: number,
) => Promise<CommandResult>;

interface Waiting {
  readonly command: object;
  readonly attempts: number;
  readonly resolve: (result: CommandResult) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Decides commands one at a time, in dispatch order: the handler sees the state with every
 * earlier command applied. A synchronous handler runs at once; while an async one runs, later
 * commands wait here, and so they do while the queue is paused (a conflict being resolved).
 * `retry` puts commands back at the front, in their order, ahead of everything waiting: they
 * were dispatched first.
 */
export class CommandQueue {
  private busy = false;
  private paused = false;
  private waiting: Waiting[] = [];

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
  submit(command: object): Promise<CommandResult> {
    if (this.busy || this.paused || this.waiting.length > 0) return this.enqueue(command, 0);
    return this.run(command, 0);
  }

  /** Decides these commands again, first, in the order given; `attempts` counts the decisions so far. */
  retry(
    commands: readonly { readonly command: object; readonly attempts: number }[],
  ): Promise<CommandResult>[] {
    const front: Waiting[] = [];
    const promises = commands.map(
      ({ command, attempts }) =>
        new Promise<CommandResult>((resolve, reject) => front.push({ command, attempts, resolve, reject })),
    );
    this.waiting = [...front, ...this.waiting];
    return promises;
  }

  /** Stops deciding (what is being decided finishes); `resume` goes on. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.drain();
  }

  /** Rejects everything waiting with `err`. */
  rejectWaiting(err: unknown): void {
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  private enqueue(command: object, attempts: number): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ command, attempts, resolve, reject });
    });
  }

  private run(command: object, attempts: number): Promise<CommandResult> {
    let output: unknown;
    let handler: object;
    const generation = this.generation();
    try {
      const h = this.bus.handlerFor(command);
      handler = h;
      output = h.execute(command, this.state);
    } catch (err) {
      return Promise.reject(err);
    }
    if (output !== null && typeof (output as { then?: unknown })?.then === 'function') {
      this.busy = true;
      return (output as Promise<unknown>).then(
        (events) => {
          this.busy = false;
          try {
            return this.commit(events, handler, command, attempts, generation);
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
      return this.commit(output, handler, command, attempts, generation);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Runs waiting commands until one is async again (it calls back here) or the queue pauses. */
  private drain(): void {
    while (!this.busy && !this.paused && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      const refused = this.refusal();
      const result = refused !== null ? Promise.reject(refused) : this.run(next.command, next.attempts);
      result.then(next.resolve, next.reject);
    }
  }
}
