import { deepStrictEqual, fail, ok } from 'node:assert/strict';
import type { App } from '../app/app';
import { createApp } from '../app/create-app';
import type { Type } from '../decorators/metadata';
import type { DomainEvent } from '../events/event';
import type { JsonValue } from '../events/json';
import type { EventStore } from '../store/event-store';
import { silentLogger } from '../runtime/logger';
import { MemoryStore } from '../store/memory-store';

/** What {@link AppSpecification.for} needs: the app's classes, and a fresh store per scenario. */
export interface AppSpecificationOptions {
  readonly handlers?: readonly Type[];
  readonly projections?: readonly Type[];
  /** Returns a fresh store; called once per scenario and reopened (same instance) for the replay check. Default: MemoryStore. */
  readonly store?: () => EventStore;
  /** The app's `projectionsVersion`, given to `createApp` as it is. */
  readonly projectionsVersion?: string | number;
}

/** The outcome of a scenario's `when`, checked by a `then…`. */
export interface ThenStep {
  /** The state after `when` equals `expected`, and a replay of the log gives the same state. */
  thenState(expected: Record<string, JsonValue>): Promise<void>;
  /** `when` produced exactly these events (and they replay to the live state). */
  thenEvents(expected: readonly DomainEvent<string, unknown>[]): Promise<void>;
  /** `when` was refused with this error class; the state and the log are as `given` left them. */
  thenThrows(errorClass: abstract new (...args: never[]) => Error, message?: RegExp): Promise<void>;
}

/** A scenario under way: `when` runs the command under test. */
export interface WhenStep {
  when(command: object): ThenStep;
}

/**
 * Given / when / then for handlers and projections, after Emmett's `DeciderSpecification`: the
 * `given` commands build the state, `when` runs the command under test, and each `then…` step also
 * reopens the store and checks that replay rebuilds exactly the live state, so every scenario
 * tests determinism too. Uses `node:assert`, so it works under any test runner.
 *
 * ```ts
 * const spec = AppSpecification.for({ handlers: [DepositHandler], projections: [Balances] });
 * await spec.given(new Deposit('a', 10)).when(new Deposit('a', 5)).thenState({ 'balance:a': 15 });
 * ```
 */
export class AppSpecification {
  private constructor(private readonly options: AppSpecificationOptions) {}

  /** Makes a specification for one set of handlers and projections. */
  static for(options: AppSpecificationOptions): AppSpecification {
    return new AppSpecification(options);
  }

  /** Starts a scenario from the state these commands build (none: empty state). */
  given(...commands: object[]): WhenStep {
    return { when: (command) => this.scenario(commands, command) };
  }

  private scenario(given: readonly object[], command: object): ThenStep {
    const store = (this.options.store ?? (() => new MemoryStore()))();
    const open = () =>
      createApp({
        handlers: this.options.handlers,
        projections: this.options.projections,
        projectionsVersion: this.options.projectionsVersion,
        store,
        logger: silentLogger,
      });
    const run = async () => {
      const app = await open();
      for (const c of given) await app.execute(c);
      const before = snapshotOf(app);
      let events: readonly DomainEvent[] | undefined;
      let error: unknown;
      try {
        events = (await app.execute(command)).events;
      } catch (err) {
        error = err;
      }
      const after = snapshotOf(app);
      await app.close();
      const replayed = await open();
      const afterReplay = snapshotOf(replayed);
      await replayed.close();
      deepStrictEqual(afterReplay, after, 'replaying the log does not give the live state');
      return { before, after, events, error };
    };
    return {
      thenState: async (expected) => {
        const { after, error } = await run();
        if (error !== undefined) fail(`expected the command to succeed, it threw ${String(error)}`);
        deepStrictEqual(after, expected);
      },
      thenEvents: async (expected) => {
        const { events, error } = await run();
        if (error !== undefined) fail(`expected the command to succeed, it threw ${String(error)}`);
        deepStrictEqual(events, expected);
      },
      thenThrows: async (errorClass, message) => {
        const { before, after, error } = await run();
        ok(
          error instanceof errorClass,
          `expected ${errorClass.name}, got ${error === undefined ? 'success' : String(error)}`,
        );
        if (message !== undefined)
          ok(
            message.test((error as Error).message),
            `message ${(error as Error).message} does not match ${message}`,
          );
        deepStrictEqual(after, before, 'a refused command changed the state');
      },
    };
  }
}

function snapshotOf(app: App): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [key, value] of [...app.state.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    out[key] = value;
  return out;
}
