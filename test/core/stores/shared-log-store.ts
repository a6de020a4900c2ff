import {
  AppendConflictError,
  type EventGroup,
  type EventStore,
  type ReplayEnd,
  type ReplayOptions,
  type ReplaySink,
  type StoreOpenInfo,
} from 'appendonly';

/**
 * One log that several stores append to, as several processes share one database table: the
 * head moves when any of them appends. `rival`, when set, is another writer that appends a
 * command of its own just before each of ours lands (a log that is never quiet).
 */
export class SharedLog {
  readonly groups: EventGroup[] = [];
  rival: (() => EventGroup) | null = null;

  get head(): number {
    const last = this.groups[this.groups.length - 1];
    return last === undefined ? 0 : last.seq + last.events.length - 1;
  }
}

/**
 * A store on a {@link SharedLog} with the conflict rule of a shared log: an append lands only
 * if its seq is the head + 1 (another writer has not appended meanwhile), one event-loop turn
 * after it was made (a round trip to the database). After a conflict it refuses every append
 * until a replay has read up to the head, as the contract says.
 */
export class SharedLogStore implements EventStore {
  readonly kind = 'shared-memory';
  readonly sharedLog = true;
  /** Appends that landed, and conflicts refused: what the tests check. */
  landed = 0;
  conflicts = 0;
  private stale = false;

  constructor(private readonly log: SharedLog) {}

  async open(): Promise<StoreOpenInfo> {
    return { kind: this.kind, location: 'memory', created: this.log.groups.length === 0, sizeBytes: 0 };
  }

  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    const after = options?.after ?? 0;
    for (const group of this.log.groups) if (group.seq > after) sink.group(group);
    this.stale = false;
    return { lastSeq: this.log.head };
  }

  append(group: EventGroup): Promise<void> {
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        const log = this.log;
        if (log.rival !== null && !this.stale) log.groups.push(log.rival());
        if (this.stale || group.seq !== log.head + 1) {
          this.stale = true;
          this.conflicts++;
          reject(new AppendConflictError(`seq ${group.seq} is taken: the log is at ${log.head}`, log.head));
          return;
        }
        log.groups.push(group);
        this.landed++;
        resolve();
      });
    });
  }

  async close(): Promise<void> {}
}
