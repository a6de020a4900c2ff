import type { Logger } from '../runtime/logger';
import type { ConsumerRecord, RetentionStats, StoreContext } from '../store/event-store';

/*
 * What a compaction keeps for consumers, decided once for every store (PostgreSQL's replication
 * slots, on a log of events): the events after the lowest stored position among the consumers
 * that are not stale survive the compaction, outside the replay path (they are below the new
 * snapshot, so no open reads them) and outside the size the next automatic compaction is
 * measured by; each store keeps them where its replay does not look (AOF: `type h` files of the
 * manifest; SQLite: `events_history`; PostgreSQL: the rows below `snapshot_seq`; memory: an array
 * of its own). A consumer further behind than `maxConsumerLag` is marked stale in its record
 * instead, and holds nothing: a dead consumer cannot grow the log forever.
 *
 * Invariant: for every consumer record that is not stale after the compaction, every event
 * after its stored position is still readable (`read`). Stored positions only trail what a
 * runner handled, so a running consumer never finds a gap either.
 */

/** What one compaction keeps, and the consumers it marks stale. */
export interface RetentionPlan {
  /**
   * The events after this seq (up to the snapshot's) are kept; null when none is (no consumer
   * behind the snapshot): the store drops everything the snapshot covers, as before consumers.
   */
  readonly keepAfter: number | null;
  /** The records to save with their new stale mark. */
  readonly marked: readonly ConsumerRecord[];
  readonly stats: RetentionStats;
}

/**
 * Decides what a compaction covering up to `seq` keeps, from the consumers' stored records: a
 * record already stale holds nothing; one more than `maxLag` events behind `seq` is marked
 * (`markedAt` = `now`); the lowest position below `seq` among the others holds the events after it.
 */
export function planRetention(
  records: readonly ConsumerRecord[],
  seq: number,
  maxLag: number,
  now: number,
): RetentionPlan {
  const marked: ConsumerRecord[] = [];
  const stale: string[] = [];
  let holder: ConsumerRecord | undefined;
  for (const r of records) {
    if (r.stale !== undefined) {
      stale.push(r.name);
      continue;
    }
    const lag = seq - r.position;
    if (lag > maxLag) {
      marked.push({ ...r, stale: { markedAt: now, seq, lag } });
      stale.push(r.name);
      continue;
    }
    if (r.position < seq && (holder === undefined || r.position < holder.position)) holder = r;
  }
  stale.sort();
  if (holder === undefined) return { keepAfter: null, marked, stats: { seq, keptEvents: 0, stale } };
  return {
    keepAfter: holder.position,
    marked,
    stats: {
      seq,
      heldBy: { name: holder.name, position: holder.position },
      keptFrom: holder.position + 1,
      keptEvents: seq - holder.position,
      stale,
    },
  };
}

/** How a store reads and writes its consumers' records, for {@link retainForConsumers}. */
export interface RetentionHost {
  loadConsumers(): Promise<readonly ConsumerRecord[]>;
  saveConsumer(record: ConsumerRecord): Promise<void>;
  readonly maxConsumerLag: number;
  readonly logger: Logger;
  now(): number;
}

/**
 * Plans a compaction's retention (see {@link planRetention}) and stores the stale marks before
 * the store drops anything, so that a record is never left unmarked while its events are gone.
 * A mark that cannot be stored keeps its consumer holding the log, as if it were not behind.
 */
export async function retainForConsumers(host: RetentionHost, seq: number): Promise<RetentionPlan> {
  const records = await host.loadConsumers();
  const plan = planRetention(records, seq, host.maxConsumerLag, host.now());
  if (plan.marked.length === 0) return plan;
  const unmarked = new Set<string>();
  for (const r of plan.marked) {
    try {
      await host.saveConsumer(r);
      host.logger.warn(
        `consumer ${JSON.stringify(r.name)} is ${r.stale!.lag} events behind the compaction at seq ${seq} ` +
          `(more than maxConsumerLag ${host.maxConsumerLag}): marked stale, its events are no longer kept; ` +
          `app.resetConsumer(${JSON.stringify(r.name)}, from) runs it again`,
      );
    } catch (err) {
      unmarked.add(r.name);
      host.logger.warn(
        `consumer ${JSON.stringify(r.name)}: could not mark it stale (${(err as Error).message}); its events are kept`,
      );
    }
  }
  if (unmarked.size === 0) return plan;
  // The consumers whose mark failed hold the log as they did: plan again without marking them.
  const kept = records.map((r) =>
    unmarked.has(r.name) ? r : (plan.marked.find((m) => m.name === r.name) ?? r),
  );
  const again = planRetention(kept, seq, Number.POSITIVE_INFINITY, host.now());
  return { ...again, marked: plan.marked.filter((m) => !unmarked.has(m.name)) };
}

/**
 * A store's side of retention: plans each compaction through its own `loadConsumers` and
 * `saveConsumer` (see {@link retainForConsumers}) and keeps what the last one found, for `stats()`.
 */
export class ConsumerRetention {
  /** What the last compaction kept (absent before the first). */
  stats: RetentionStats | undefined = undefined;
  private readonly host: RetentionHost;

  constructor(
    store: Pick<RetentionHost, 'loadConsumers' | 'saveConsumer'>,
    maxConsumerLag: number,
    context: StoreContext,
  ) {
    this.host = {
      loadConsumers: () => store.loadConsumers(),
      saveConsumer: (r) => store.saveConsumer(r),
      maxConsumerLag,
      logger: context.logger,
      now: () => context.clock.now(),
    };
  }

  /** The plan of a compaction whose snapshot covers up to `seq`, stale marks stored. */
  async plan(seq: number): Promise<RetentionPlan> {
    const plan = await retainForConsumers(this.host, seq);
    this.stats = plan.stats;
    return plan;
  }

  /** `stats()`'s `retention` field, once a compaction ran. */
  field(): { retention?: RetentionStats } {
    return this.stats !== undefined ? { retention: this.stats } : {};
  }
}
