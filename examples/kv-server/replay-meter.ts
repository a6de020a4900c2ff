import type {
  CompactionResult,
  EventGroup,
  EventStore,
  ReplayRecord,
  StoreContext,
  StoreOpenInfo,
  StoreStats,
} from 'appendonly';

/**
 * An EventStore that passes everything to the store it wraps and counts what `replay` yields,
 * so that the server can print events/s while it loads. The bytes come from the store itself
 * (`replayProgress`); the events can only be counted on their way to the app.
 */
export class ReplayMeter implements EventStore {
  /** Events (and snapshot keys) yielded by replay so far. */
  events = 0;

  constructor(readonly inner: EventStore) {}

  get kind(): string {
    return this.inner.kind;
  }

  open(context: StoreContext): Promise<StoreOpenInfo> {
    return this.inner.open(context);
  }

  async *replay(): AsyncIterable<readonly ReplayRecord[]> {
    for await (const batch of this.inner.replay()) {
      let n = 0;
      for (let i = 0; i < batch.length; i++) {
        const r = batch[i];
        n += r.kind === 'group' ? r.events.length : r.kind === 'entry' || r.kind === 'set' ? 1 : 0;
      }
      this.events += n;
      yield batch;
    }
  }

  append(group: EventGroup): Promise<void> {
    return this.inner.append(group);
  }

  compact(): Promise<CompactionResult> {
    return this.inner.compact();
  }

  recover(): Promise<void> {
    return this.inner.recover();
  }

  replayProgress(): { readonly bytesRead: number; readonly bytesTotal: number } {
    return this.inner.replayProgress();
  }

  stats(): StoreStats {
    return this.inner.stats();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
