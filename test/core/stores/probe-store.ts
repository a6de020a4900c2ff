import {
  AppendConflictError,
  type EventGroup,
  PersistenceError,
  type ReplayEnd,
  type ReplayOptions,
  type ReplaySink,
} from 'appendonly';
import { SharedLogStore } from './shared-log-store';

/** What one append does: land (`null`), fail as a write does (`'persist'`), or be refused as taken (`'conflict'`). */
export type AppendFault = 'persist' | 'conflict' | null;

/**
 * A {@link SharedLogStore} for fault tests. It fails the appends it is told to, one event-loop
 * turn after they were made, as a database does: with a `PersistenceError` or an
 * `AppendConflictError` (the log is left as it was). It can fail a replay half way, slow replays
 * down, and run a callback while a replay runs. It records what a correct App never does: a call
 * after `close()`, an append while a replay runs, a replay while an append is in flight.
 */
export class ProbeStore extends SharedLogStore {
  /** What the next appends do, in order; once empty, appends go to the shared log. */
  failNext: AppendFault[] = [];
  /** The next replay applies its first command, then throws a read error at the second. */
  replayFailOnce = false;
  /** Each replay waits two event-loop turns before it reads (a slow database). */
  replaySlow = false;
  /** Called one event-loop turn into the next replay, while it still runs. */
  duringNextReplay: (() => void) | null = null;

  closed = false;
  /** The calls made after `close()`, as `'replay'` or `'append <seq>'`. */
  readonly afterClose: string[] = [];
  /** Appends made while a replay ran. */
  appendDuringReplay = 0;
  /** Replays started while an append was in flight. */
  replayDuringAppend = 0;

  private pending = 0;
  private replaying = false;

  override async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    if (this.closed) this.afterClose.push('replay');
    if (this.pending > 0) this.replayDuringAppend++;
    this.replaying = true;
    try {
      const during = this.duringNextReplay;
      this.duringNextReplay = null;
      if (during !== null) setImmediate(during);
      if (this.replaySlow) {
        await turn();
        await turn();
      }
      if (!this.replayFailOnce) return await super.replay(sink, options);
      this.replayFailOnce = false;
      return await super.replay(failingAtSecondGroup(sink), options);
    } finally {
      this.replaying = false;
    }
  }

  override append(group: EventGroup): Promise<void> {
    if (this.closed) this.afterClose.push(`append ${group.seq}`);
    if (this.replaying) this.appendDuringReplay++;
    const fault = this.failNext.shift() ?? null;
    this.pending++;
    const done =
      fault === null
        ? super.append(group)
        : new Promise<void>((_, reject) =>
            setImmediate(() =>
              reject(
                fault === 'persist'
                  ? new PersistenceError('disk gone', undefined)
                  : new AppendConflictError('taken', 0),
              ),
            ),
          );
    return done.finally(() => {
      this.pending--;
    });
  }

  override async close(): Promise<void> {
    this.closed = true;
    await super.close();
  }
}

/** One event-loop turn. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `sink`, except that its second command throws a read error instead of reaching it. */
function failingAtSecondGroup(sink: ReplaySink): ReplaySink {
  let groups = 0;
  return {
    snapshot: (seq, info) => sink.snapshot(seq, info),
    entry: (key, value) => sink.entry(key, value),
    group: (group, position) => {
      if (groups++ === 1) throw new Error('read error');
      sink.group(group, position);
    },
    set: (seq, time, key, value, position) => sink.set(seq, time, key, value, position),
  };
}
