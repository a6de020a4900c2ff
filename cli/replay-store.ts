import {
  type App,
  AppClosedError,
  type CompactionResult,
  createApp,
  type EventStore,
  type ReplayRecord,
  type StoreOpenInfo,
  type StoreStats,
  silentLogger,
} from '../src/index';
import { IDLE_COMPACTION_STATS } from '../src/kit/index';
import type { AppClasses } from './app-module';
import { readRecords } from './records';
import type { Target } from './target';

/**
 * A read-only EventStore over a log: `replay()` is the tool's non-repairing read, every write
 * rejects. It lets the tool build the state exactly as an app would (createApp, the same
 * projections, the same apply code) without opening the real store, which would take the lock
 * and cut a torn tail.
 */
export class ReplayOnlyStore implements EventStore {
  readonly kind: string;
  private lastSeq = 0;

  /** `observe` sees every batch as the app replays it (info counts records in the same pass). */
  constructor(
    private readonly target: Target,
    private readonly observe?: (batch: readonly ReplayRecord[]) => void,
  ) {
    this.kind = target.kind === 'aof' ? 'aof' : 'sqlite-wal';
  }

  async open(): Promise<StoreOpenInfo> {
    const location = this.target.kind === 'aof' ? this.target.logDir : this.target.file;
    return { kind: this.kind, location, created: false, sizeBytes: 0 };
  }

  async *replay(): AsyncIterable<readonly ReplayRecord[]> {
    for await (const batch of readRecords(this.target, 'replaying')) {
      for (const r of batch) {
        if (r.kind === 'snapshot') this.lastSeq = r.seq;
        else if (r.kind === 'group') this.lastSeq = r.seq + r.events.length - 1;
        else if (r.kind === 'set') this.lastSeq = r.seq;
      }
      this.observe?.(batch);
      yield batch;
    }
  }

  append(): Promise<void> {
    return Promise.reject(new AppClosedError('the appendonly tool opened this log read-only'));
  }

  compact(): Promise<CompactionResult> {
    return Promise.reject(new AppClosedError('the appendonly tool opened this log read-only'));
  }

  async recover(): Promise<void> {}

  replayProgress(): { bytesRead: number; bytesTotal: number } {
    return { bytesRead: 0, bytesTotal: 0 };
  }

  stats(): StoreStats {
    return {
      kind: this.kind,
      appendfsync: 'no',
      ...IDLE_COMPACTION_STATS,
      lastWriteStatus: 'ok',
      bufferLength: 0,
      pendingBioFsync: 0,
      delayedFsync: 0,
      lastSeq: this.lastSeq,
    };
  }

  async close(): Promise<void> {}
}

/** Replays `target` through an app made of `classes`, read-only; the caller closes it. */
export function replayApp(
  target: Target,
  classes: AppClasses,
  observe?: (batch: readonly ReplayRecord[]) => void,
): Promise<App> {
  // Types without a projection are the caller's to judge (unknownTypes): rewrite refuses them, info leaves the key count out.
  return createApp({
    ...classes,
    store: new ReplayOnlyStore(target, observe),
    logger: silentLogger,
    unknownEventTypes: 'skip',
  });
}
