import type { DomainEvent } from '../events/event';

/** What `execute` resolves with once the command is applied and durable per the policy. */
export interface CommandResult {
  /** The events the command produced (possibly none). */
  readonly events: readonly DomainEvent[];
  /** The sequence number of the first event; the others follow one by one. With no events, the next number to be given. */
  readonly firstSeq: number;
  /** The sequence number of the last event; with no events, the last number given so far. */
  readonly lastSeq: number;
}
