import {
  CommandHandler,
  CommandRejected,
  DEL,
  type DomainEvent,
  defineEvent,
  FLUSHALL,
  type ICommandHandler,
  type ProjectionState,
  On,
  Projection,
  type ReadonlyKeyValueState,
  SET,
} from 'appendonly';

/**
 * The write side of the kv-server: one framework command per Redis write command. Each handler
 * decides from the state alone and returns events; the single writer makes read-modify-write
 * commands (INCR, APPEND, SET NX/GET) atomic without a lock. Values are strings, stored as JSON
 * strings, so the log reads as `SET key "value"`.
 *
 * A handler also leaves its answer on the command object (`written`, `value`, …): the server
 * reads it once `app.execute` has resolved, that is once the events are durable.
 */

/** A refusal with Redis's error code (`ERR`, `WRONGTYPE`): the client sees `-<code> <message>`. */
export class RedisError extends CommandRejected {
  constructor(
    readonly redisCode: string,
    message: string,
  ) {
    super(message);
  }
}

/** Redis's answer to a string command on a key that holds something else. */
export const WRONGTYPE = 'Operation against a key holding the wrong kind of value';

/** Appended to a string value: logged as the suffix, so that appending stays O(suffix) in the log. */
export const Appended = defineEvent<{ key: string; suffix: string }>('Appended');

/** The string at `key`, null when absent; refuses a key that holds something that is not a string. */
function stringAt(state: ReadonlyKeyValueState, key: string): string | null {
  const value = state.get(key);
  if (value === undefined) return null;
  if (typeof value !== 'string') throw new RedisError('WRONGTYPE', WRONGTYPE);
  return value;
}

/** SET key value [NX|XX] [GET]. */
export class SetString {
  /** Whether the value was written (false when NX/XX said no). */
  written = false;
  /** With GET: the value before. */
  previous: string | null = null;
  constructor(
    readonly key: string,
    readonly value: string,
    readonly condition: 'NX' | 'XX' | null = null,
    readonly get = false,
  ) {}
}

@CommandHandler(SetString)
export class SetStringHandler implements ICommandHandler<SetString> {
  execute(cmd: SetString, state: ReadonlyKeyValueState): DomainEvent | undefined {
    if (cmd.get) cmd.previous = stringAt(state, cmd.key);
    if (cmd.condition !== null && state.has(cmd.key) !== (cmd.condition === 'XX')) return undefined;
    cmd.written = true;
    return SET(cmd.key, cmd.value);
  }
}

/** MSET key value [key value …]: one command, so all keys are set or none (MULTI/EXEC in the AOF). */
export class SetStrings {
  constructor(readonly pairs: readonly string[]) {}
}

@CommandHandler(SetStrings)
export class SetStringsHandler implements ICommandHandler<SetStrings> {
  execute(cmd: SetStrings): DomainEvent[] {
    const events: DomainEvent[] = [];
    for (let i = 0; i + 1 < cmd.pairs.length; i += 2) events.push(SET(cmd.pairs[i], cmd.pairs[i + 1]));
    return events;
  }
}

/** DEL key [key …]. */
export class DeleteKeys {
  /** Keys that existed and were deleted. */
  deleted = 0;
  constructor(readonly keys: readonly string[]) {}
}

@CommandHandler(DeleteKeys)
export class DeleteKeysHandler implements ICommandHandler<DeleteKeys> {
  execute(cmd: DeleteKeys, state: ReadonlyKeyValueState): DomainEvent | undefined {
    // Only keys that exist, each once: a DEL that deletes nothing is not logged, as in Redis.
    const existing = [...new Set(cmd.keys)].filter((k) => state.has(k));
    cmd.deleted = existing.length;
    return existing.length === 0 ? undefined : DEL(...existing);
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Decimal integers of up to 15 digits add up exactly as doubles: the fast path of INCR. */
const SHORT_INTEGER = /^(0|-?[1-9][0-9]{0,14})$/;
const INTEGER = /^(0|-?[1-9][0-9]*)$/;

/**
 * Parses a Redis integer as string2ll does (no sign `+`, no leading zeros, no blanks, in 64 bits):
 * a number when it is small enough to add exactly, a bigint otherwise, null when it is not one.
 */
export function parseInteger(text: string): number | bigint | null {
  if (SHORT_INTEGER.test(text)) return Number(text);
  if (text.length > 20 || !INTEGER.test(text)) return null;
  const n = BigInt(text);
  return n < INT64_MIN || n > INT64_MAX ? null : n;
}

/** INCR, INCRBY, DECR, DECRBY: adds `by` to the integer in the string at `key` (0 when absent). */
export class IncrementBy {
  /** The value after the increment. */
  value = '';
  constructor(
    readonly key: string,
    readonly by: number | bigint,
  ) {}
}

@CommandHandler(IncrementBy)
export class IncrementByHandler implements ICommandHandler<IncrementBy> {
  execute(cmd: IncrementBy, state: ReadonlyKeyValueState): DomainEvent {
    const current = stringAt(state, cmd.key);
    const old = current === null ? 0 : parseInteger(current);
    if (old === null) throw new RedisError('ERR', 'value is not an integer or out of range');
    let value: string;
    if (typeof old === 'number' && typeof cmd.by === 'number') {
      value = String(old + cmd.by);
    } else {
      const sum = BigInt(old) + BigInt(cmd.by);
      if (sum < INT64_MIN || sum > INT64_MAX)
        throw new RedisError('ERR', 'increment or decrement would overflow');
      value = String(sum);
    }
    cmd.value = value;
    // The result, not the increment, is logged: replay needs no arithmetic and gives the same state.
    return SET(cmd.key, value);
  }
}

/** APPEND key suffix. */
export class AppendString {
  /** The byte length of the value after the append. */
  length = 0;
  constructor(
    readonly key: string,
    readonly suffix: string,
  ) {}
}

@CommandHandler(AppendString)
export class AppendStringHandler implements ICommandHandler<AppendString> {
  execute(cmd: AppendString, state: ReadonlyKeyValueState): DomainEvent {
    const current = stringAt(state, cmd.key) ?? '';
    cmd.length = Buffer.byteLength(current, 'utf8') + Buffer.byteLength(cmd.suffix, 'utf8');
    return Appended({ key: cmd.key, suffix: cmd.suffix });
  }
}

/** FLUSHALL: logged even when the state is empty, as Redis does (and `appendonly strip` undoes it). */
export class FlushAll {}

@CommandHandler(FlushAll)
export class FlushAllHandler implements ICommandHandler<FlushAll> {
  execute(): DomainEvent {
    return FLUSHALL();
  }
}

/** Applies the kv-server's own events; SET, DEL and FLUSHALL are applied by the state itself. */
@Projection()
export class Strings {
  @On(Appended)
  append(e: typeof Appended.Event, kv: ProjectionState): void {
    const current = kv.get(e.data.key);
    kv.set(e.data.key, (typeof current === 'string' ? current : '') + e.data.suffix);
  }
}

/** The handlers and projections of the kv-server, for `createApp`. */
export const kvDomain = {
  handlers: [
    SetStringHandler,
    SetStringsHandler,
    DeleteKeysHandler,
    IncrementByHandler,
    AppendStringHandler,
    FlushAllHandler,
  ],
  projections: [Strings],
};
