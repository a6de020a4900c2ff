import {
  type App,
  AppClosedError,
  createApp,
  type EventStore,
  type ReplayEnd,
  type ReplayOptions,
  type ReplaySink,
  type StoreOpenInfo,
  silentLogger,
} from '../src/index';
import { ReplayFeed, type ReplayRecord } from '../src/store/replay-batch';
import type { AppClasses } from './app-module';
import type { LogTools } from './log-format';

/**
 * A read-only EventStore over a log: `replay()` is the tool's non-repairing read, every append
 * rejects, and it has no other capability. It lets the tool build the state exactly as an app
 * would (createApp, the same projections, the same apply code) without opening the real store,
 * which would take the lock and cut a torn tail.
 */
export class ReplayOnlyStore implements EventStore {
  readonly kind: string;

  /** `observe` sees every batch as the app replays it (info counts records in the same pass). */
  constructor(
    private readonly log: LogTools,
    private readonly observe?: (batch: readonly ReplayRecord[]) => void,
  ) {
    this.kind = log.kind;
  }

  private get location(): string {
    return this.log.location;
  }

  async open(): Promise<StoreOpenInfo> {
    return { kind: this.kind, location: this.location, created: false, sizeBytes: 0 };
  }

  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    const feed = new ReplayFeed(sink, options, this.location);
    for await (const batch of this.log.records('replaying')) {
      this.observe?.(batch);
      feed.push(batch);
    }
    return feed.end;
  }

  append(): Promise<void> {
    return Promise.reject(new AppClosedError('the appendonly tool opened this log read-only'));
  }

  async close(): Promise<void> {}
}

/** Replays `log` through an app made of `classes`, read-only; the caller closes it. */
export function replayApp(
  log: LogTools,
  classes: AppClasses,
  observe?: (batch: readonly ReplayRecord[]) => void,
): Promise<App> {
  // Types without a projection are the caller's to judge (unknownTypes): rewrite refuses them, info leaves the key count out.
  // Unversioned, whatever `--app` says: a read-only look loads the log's snapshot as it is, and
  // never rebuilds or refuses (info reports the snapshot's version itself).
  const { projectionsVersion: _ignored, ...lists } = classes;
  return createApp({
    ...lists,
    store: new ReplayOnlyStore(log, observe),
    logger: silentLogger,
    unknownEventTypes: 'skip',
  });
}
