import type { AppliedEvent } from '../events/event';

/**
 * Where a consumer seen for the first time starts: `'start'` the first event of the log (refused
 * when compaction dropped early events before it existed), `'now'` after the last durable event
 * at the call, `{ after: seq }` after that seq. Ignored once the name has a stored position.
 */
export type ConsumerStart = 'start' | 'now' | { readonly after: number };

/**
 * What a consumer's handler may return: nothing, or a reaction, one command or an array of
 * commands (objects with a command handler). The App decides a reaction's commands through their
 * handlers, in order, on the current state, and appends their events as one command in the log
 * together with the consumer's new position (the event's seq): the reaction is in the log exactly
 * once. Each event of it carries metadata `causationId` (the triggering event's id) and
 * `correlationId` (the triggering event's, else its id). A rejected command (a domain error,
 * invalid output) fails the handler: retried, then parked, nothing of it appended. A log that
 * cannot be written (`PersistenceError`) fails nothing: the reaction waits for it to come back.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing (void) reacts with nothing
export type ConsumerReaction = void | undefined | object | readonly object[];

/**
 * A consumer's handler: called once per event, in log order; a throw is retried, then parked.
 * It may return (or resolve to) a {@link ConsumerReaction}.
 */
export type ConsumerHandler = (event: AppliedEvent) => ConsumerReaction | Promise<ConsumerReaction>;

/** The options of `app.subscribe` (and of `@Consumer`). */
export interface SubscribeOptions {
  /** Where a new consumer starts (see {@link ConsumerStart}). Default `'start'`. */
  readonly from?: ConsumerStart;
  /** Calls of the handler per event before the event is parked. Default 5. */
  readonly maxAttempts?: number;
  /** The first retry's wait in ms; doubles each retry, with jitter. Default 100. */
  readonly retryDelayMs?: number;
  /** The longest wait between retries, in ms. Default 30,000. */
  readonly maxRetryDelayMs?: number;
  /**
   * Events read from the log at once. Default 256. Bounds the memory a consumer holds: it reads
   * the log at its own pace, never buffering what it has not reached.
   */
  readonly pageSize?: number;
  /**
   * The position is stored after this many events at most (default 1024), or after
   * `checkpointIntervalMs` (default 200), whichever comes first, at once when an event is parked,
   * and on close. A crash hands again what was handled since the last store: at most that much.
   */
  readonly checkpointEvery?: number;
  /** See `checkpointEvery`. Default 200 ms. */
  readonly checkpointIntervalMs?: number;
}

/**
 * What a consumer is doing. `'standby'`: on a log several processes share (PostgreSQL), another
 * instance holds the name, or this one lost its hold (its lock's session ended); it hands
 * nothing, and takes over (from the stored position) once the name is free. `'stale'`: a
 * compaction found it more than `maxConsumerLag` events behind (or its events are gone); it
 * stopped, and runs again only after `app.resetConsumer`.
 */
export type ConsumerStatus = 'standby' | 'catching-up' | 'live' | 'retrying' | 'failed' | 'stale' | 'closed';

/** `sub.stats()`. */
export interface ConsumerStats {
  readonly name: string;
  /** The last seq handled (or parked). */
  readonly position: number;
  /** Durable events after the position, as far as this instance knows. */
  readonly lag: number;
  /** Handler calls that threw and were retried, since the subscription started. */
  readonly retries: number;
  /** Events parked (dead letters) and not yet dropped. */
  readonly parked: number;
  readonly status: ConsumerStatus;
}

/** A running durable consumer, as `app.subscribe` returns it. */
export interface Subscription {
  readonly name: string;
  /** Resolves once the consumer has handled (or parked) every event durable before the call. */
  caughtUp(): Promise<void>;
  stats(): ConsumerStats;
  /** Stops it after the event being handled, and stores its position; the name stays known. */
  close(): Promise<void>;
}
