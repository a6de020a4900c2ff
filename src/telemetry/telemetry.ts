import type { ConsumerStats } from '../consumers/types';
import type { AppliedEvent, EventMetadata } from '../events/event';

/*
 * What the App tells an observer (tracing, metrics) about its work. The App calls these hooks on
 * its hot path, so an observer that records nothing must cost nothing: `command` returns
 * undefined when no tracer or meter listens, and the App then runs the command exactly as it does
 * without telemetry. `appendonly/opentelemetry` implements it on @opentelemetry/api.
 */

/**
 * The observer of one app, given to `createApp({ telemetry })`. Every member is optional: an
 * observer implements what it records.
 */
export interface Telemetry {
  /**
   * A command is executed. Returns its trace (see {@link CommandTrace}), or undefined to let it
   * run untraced (nothing listens). Called synchronously inside `execute`, in the caller's
   * context.
   */
  command?(type: string, metadata: EventMetadata | undefined): CommandTrace | undefined;
  /** A replay starts: the app's load at start (or a reload), or a catch-up with other writers. */
  replay?(kind: 'load' | 'catch-up'): ReplayTrace | undefined;
  /**
   * A durable consumer is handed an event (once per attempt: a retry is traced again). Called
   * in the runner; the handler runs inside `run`, so that what it traces nests under it.
   */
  consume?(consumer: string, event: AppliedEvent): ConsumeTrace | undefined;
  /** A compaction starts, asked by `app.compact()` or automatic (the store's scheduler asks). */
  compaction?(): CompactionTrace | undefined;
  /** A store fsynced its log (the time the fsync took, in seconds). */
  fsync?(seconds: number): void;
  /** The app is open: `source` reads what gauges report (consumers' lag). */
  attach?(source: TelemetrySource): void;
  /** The app closed. */
  detach?(): void;
}

/** What an observer may read from the app, when it collects gauges. */
export interface TelemetrySource {
  /** The stats of every consumer running in this app. */
  consumers(): readonly ConsumerStats[];
}

/**
 * One command's trace. The App calls, in order: `decide` before the handler runs and `decided`
 * when it returned (once per decision: a conflict on a shared log decides again), `applied` once
 * the events are in the state with their seqs, `appended` when the store was handed them, then
 * exactly one of `durable` or `failed`.
 */
export interface CommandTrace {
  /** The metadata to log with the command's events: the caller's, plus the trace context. */
  readonly metadata: EventMetadata | undefined;
  /** Runs `fn` in the command's context, so that what the handler traces nests under it. */
  run<T>(fn: () => T): T;
  decide(attempt: number): void;
  decided(): void;
  applied(firstSeq: number, lastSeq: number, events: number): void;
  appended(): void;
  durable(): void;
  /** `rejected`: the handler refused it (`CommandRejected`, an unknown command, a bad event). */
  failed(err: unknown, rejected: boolean): void;
}

/** One handling of an event by a consumer. */
export interface ConsumeTrace {
  /** Runs `fn` (the handler) in the handling's context. */
  run<T>(fn: () => T): T;
  /** The handler (and its reaction, if any) finished; `error` when it threw. */
  end(error?: unknown): void;
}

/** One replay's trace. */
export interface ReplayTrace {
  end(result: { readonly groups: number; readonly entries: number } | { readonly error: unknown }): void;
}

/** One compaction's trace. */
export interface CompactionTrace {
  end(result: { readonly seq: number; readonly keys: number } | { readonly error: unknown }): void;
}
