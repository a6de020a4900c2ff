/**
 * The errors of appendonly. Each class has a stable `code`, so that callers can branch on it
 * without `instanceof` across package copies; the message says what and where.
 */
export abstract class AppendonlyError extends Error {
  /** A stable machine-readable code, e.g. `COMMAND_REJECTED`. */
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Thrown by a command handler to refuse a command; nothing is applied or logged. */
export class CommandRejected extends AppendonlyError {
  readonly code = 'COMMAND_REJECTED';
}

/** A command was executed for which no `@CommandHandler` is registered. */
export class UnknownCommandError extends AppendonlyError {
  readonly code = 'UNKNOWN_COMMAND';
}

/** A query was run for which no `@QueryHandler` is registered. */
export class UnknownQueryError extends AppendonlyError {
  readonly code = 'UNKNOWN_QUERY';
}

/** Two handlers were registered for one command or query class. */
export class DuplicateHandlerError extends AppendonlyError {
  readonly code = 'DUPLICATE_HANDLER';
}

/** A handler returned something that is not a list of events, or event data that is not JSON. */
export class InvalidEventError extends AppendonlyError {
  readonly code = 'INVALID_EVENT';
}

/** The app (or store) was used after `close()`, or before it was opened. */
export class AppClosedError extends AppendonlyError {
  readonly code = 'APP_CLOSED';
}

/** An option given to a store or to `createApp` is unknown or has a bad value. */
export class ConfigError extends AppendonlyError {
  readonly code = 'INVALID_OPTION';
}

/** Another writer holds the store's lock. */
export class StoreLockedError extends AppendonlyError {
  readonly code = 'STORE_LOCKED';
}

/** Why a store's driver cannot be used: not installed, its native build missing, or built for another Node. */
export type DriverProblem = 'missing' | 'not-built' | 'wrong-abi';

/**
 * A store's driver (an optional peer dependency such as better-sqlite3) cannot be loaded: thrown
 * when its adapter is imported. The message is one line naming the command that fixes it;
 * `cause` holds the driver's own error.
 */
export class MissingDriverError extends AppendonlyError {
  readonly code = 'MISSING_DRIVER';
  constructor(
    /** The npm package that could not be loaded. */
    readonly driver: string,
    /** What is wrong with it. */
    readonly problem: DriverProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A write or fsync of the log failed. `code` is the system's code (`ENOSPC`, `EIO`,
 * `SQLITE_FULL`, …) or `EPERSISTENCE` when the cause has none. Commands that were not durable
 * reject with it, and the app refuses new commands with it until the store has recovered.
 */
export class PersistenceError extends AppendonlyError {
  readonly code: string;
  constructor(message: string, code: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code ?? 'EPERSISTENCE';
  }

  /** Wraps any error of a write path, keeping its system code. */
  static from(what: string, err: unknown): PersistenceError {
    if (err instanceof PersistenceError) return err;
    const code = (err as { code?: unknown } | null)?.code;
    const reason = err instanceof Error ? err.message : String(err);
    return new PersistenceError(`${what}: ${reason}`, typeof code === 'string' ? code : undefined, {
      cause: err,
    });
  }
}

/** The log cannot be loaded as it is: names the file, the byte offset and what was expected there. */
export class CorruptLogError extends AppendonlyError {
  readonly code = 'CORRUPT_LOG';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly expected: string,
    detail?: string,
  ) {
    super(
      `${file}: bad format at byte offset ${offset}: expected ${expected}${detail ? ` (${detail})` : ''}`,
    );
  }
}

/** The log ends in the middle of a record and the store was told not to repair it (`loadTruncated: false`). */
export class TruncatedLogError extends AppendonlyError {
  readonly code = 'TRUNCATED_LOG';
  constructor(
    readonly file: string,
    readonly offset: number,
    hint: string,
  ) {
    super(`${file}: the log ends in an incomplete record at byte offset ${offset}; ${hint}`);
  }
}

/**
 * The log holds an event type this app does not define (no `defineEvent`, no `@On`): it was
 * written by other code. Names the type, its sequence number and, when the store knows it, the
 * file and byte offset. `createApp({ unknownEventTypes: 'skip' })` loads without such events.
 */
export class UnknownEventTypeError extends AppendonlyError {
  readonly code = 'UNKNOWN_EVENT_TYPE';
  constructor(
    readonly type: string,
    readonly seq: number,
    readonly where: string | undefined,
  ) {
    super(
      `the log holds an event of type ${JSON.stringify(type)} (seq ${seq}${where ? `, ${where}` : ''}) that this app does not define: ` +
        `define it with defineEvent and handle it in a projection, or pass unknownEventTypes: 'skip' to createApp to load without it`,
    );
  }
}

/**
 * The log holds an event at a version newer than this code's `defineEvent` (written by a newer
 * release): upcasting goes forward only, so the event cannot be read. Names the type, the
 * version, the version this code knows and where the record is (file and offset, table and seq).
 */
export class EventVersionError extends AppendonlyError {
  readonly code = 'EVENT_VERSION';
  constructor(
    readonly type: string,
    readonly version: number,
    /** The version this code logs `type` at. */
    readonly known: number,
    readonly where: string | undefined,
  ) {
    super(
      `the log holds an event of type ${JSON.stringify(type)} at version ${version}${where ? ` (${where})` : ''}, ` +
        `but this code knows it up to version ${known}: run the release that wrote it, or define the event at version ${version}`,
    );
  }
}

/**
 * Applying a logged event failed during replay (a projection threw, or a value is not valid
 * state): the code and the log disagree. Names the event's type, seq and, when the store knows
 * it, file and byte offset; `cause` is the original error. The app does not start.
 */
export class ReplayFailedError extends AppendonlyError {
  readonly code = 'REPLAY_FAILED';
  constructor(
    readonly type: string,
    readonly seq: number,
    readonly where: string | undefined,
    cause: unknown,
  ) {
    super(
      `replaying event ${type} (seq ${seq}${where ? `, ${where}` : ''}) failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/**
 * Another writer appended to a shared log first: the group was decided on a stale state and is
 * not in the log. The App handles it (rolls back, catches up, decides again); a command rejects
 * with it only after its retries ran out.
 */
export class AppendConflictError extends AppendonlyError {
  readonly code = 'APPEND_CONFLICT';
  constructor(
    message: string,
    /** The sequence number the store's log has reached, when it knows it. */
    readonly head?: number,
  ) {
    super(message);
  }
}

/** `app.compact()` on a store that has no compaction (it does not implement `compact`). */
export class CannotCompactError extends AppendonlyError {
  readonly code = 'CANNOT_COMPACT';
}

/**
 * A replay was asked to start after a sequence number whose following events compaction has
 * dropped: they survive only in the snapshot. Names the first event that can still be read.
 */
export class LogCompactedError extends AppendonlyError {
  readonly code = 'LOG_COMPACTED';
  constructor(
    /** The sequence number asked for. */
    readonly after: number,
    /** The first sequence number still in the log as an event. */
    readonly firstAvailable: number,
    /** The log, as the store names it (a folder, a file, a connection without its password). */
    readonly where: string,
  ) {
    super(
      `${where}: the events after seq ${after} up to ${firstAvailable - 1} were compacted away; the first event still in the log is seq ${firstAvailable}`,
    );
  }
}

/**
 * A shared log no longer holds commands this instance applied: a database crash under
 * `synchronous_commit = off` (the `everysec` and `no` policies) dropped the last commits, and
 * their sequence numbers were given again to other commands. The state this instance holds is
 * not the log's: the App reloads it from the log (and says so in a warning). `code` is
 * `ELOGLOST`; it is a PersistenceError, so a command refused with it was not logged.
 */
export class LogLostError extends PersistenceError {
  constructor(
    /** Names the log. */
    where: string,
    /** The last sequence number this instance had applied. */
    readonly seq: number,
    /** What the log has instead, for the message. */
    found: string,
  ) {
    super(
      `${where}: seq ${seq}, applied by this instance, is no longer in the log as it was (${found}; commits lost in a database crash under synchronous_commit = off): this instance must reload its state`,
      'ELOGLOST',
    );
  }
}

/**
 * The log's snapshot was built by other projections than this app's (`createApp({
 * projectionsVersion })`), and the events it covers were compacted away, so the state cannot be
 * rebuilt with this app's projections. The app does not start (or, following a shared log, stops
 * taking commands) rather than run on a state its projections did not compute. Names both
 * versions and the ways out.
 */
export class ProjectionsVersionError extends AppendonlyError {
  readonly code = 'PROJECTIONS_VERSION';
  constructor(
    /** The app's `projectionsVersion`. */
    readonly appVersion: string,
    /** The projections version the snapshot was built with. */
    readonly snapshotVersion: string,
    /** The last sequence number the snapshot covers. */
    readonly snapshotSeq: number,
    /** The first event still in the log. */
    readonly firstAvailable: number,
    /** The log, as the store names it. */
    readonly where: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${where}: the snapshot (up to seq ${snapshotSeq}) was built by projections version ${JSON.stringify(snapshotVersion)}, ` +
        `this app's projections are version ${JSON.stringify(appVersion)}, and the events before seq ${firstAvailable} were compacted away: ` +
        `the state cannot be rebuilt with these projections. Run the release whose projections are version ${JSON.stringify(snapshotVersion)}, ` +
        'or restore the compacted events (a store with keepHistory: true keeps them), ' +
        'or, to keep the snapshot as it is, start once without projectionsVersion and compact (an unversioned snapshot loads under any version)',
      options,
    );
  }
}

/**
 * A durable consumer cannot start or resume: `'start'` on a log whose first events were
 * compacted away before it existed (names the first event it could get), a stored position
 * beyond the end of the log, a store without the consumer capabilities, a name subscribed twice.
 * Names the consumer.
 */
export class ConsumerError extends AppendonlyError {
  readonly code = 'CONSUMER';
  constructor(
    /** The consumer's name. */
    readonly consumer: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`consumer ${JSON.stringify(consumer)}: ${message}`, options);
  }
}

/**
 * A consumer a compaction marked stale (it was more than `maxConsumerLag` events behind, or the
 * events after its position are gone): it no longer holds compaction back, and it runs again
 * only once reset with `app.resetConsumer(name, from)`. Its `code` is `CONSUMER`, as every
 * consumer error's; `instanceof StaleConsumerError` tells it apart.
 */
export class StaleConsumerError extends ConsumerError {
  constructor(consumer: string, detail: string, options?: { cause?: unknown }) {
    super(
      consumer,
      `is stale: ${detail}; reset it with app.resetConsumer(${JSON.stringify(consumer)}, from) (from: 'start', 'now' or { after: seq }) to run it again`,
      options,
    );
  }
}
