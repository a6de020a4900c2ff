import * as assert from 'node:assert/strict';
import type { App } from '../app/app';
import type { JsonValue } from '../events/json';
import type { EventStore, StoreContext } from '../store/event-store';
import { Count, Put } from './fixtures';

/** A test case: `it` of jest, mocha or node:test. */
export type TestCase = (name: string, body: () => Promise<void>) => void;

/** What the compaction cases need from the store suite. */
export interface CompactionHelpers {
  readonly it: TestCase;
  /** A new store instance on the test's location. */
  readonly newStore: () => EventStore;
  /** Opens an app on `store` (closed by the suite after the test). */
  readonly open: (store: EventStore) => Promise<App>;
  /** Closes `app` and opens the location again. */
  readonly reopen: (app: App) => Promise<App>;
}

/** Counts the snapshots a store takes, and can make the next ones fail. */
interface SnapshotSpy {
  taken: number;
  failNext: number;
}

/**
 * The compaction rule every store shares (the kit's CompactionScheduler), checked through the
 * public API only: the store is wrapped so that its snapshots are counted, which tells when the
 * running compaction has taken its snapshot. Call inside the store suite's `describe`.
 *
 * The trigger's back-off is not checked here: reaching the trigger needs store options (a small
 * autoRewriteMinSize) that the suite's factory fixes; the kit's own tests check it.
 */
export function runCompactionConformance({ it, newStore, open, reopen }: CompactionHelpers): void {
  const spied = async (): Promise<{ app: App; spy: SnapshotSpy } | null> => {
    const spy: SnapshotSpy = { taken: 0, failNext: 0 };
    const store = newStore();
    // Compaction is a capability: a store without it has nothing to check here.
    if (typeof store.compact !== 'function') return null;
    return { app: await open(spyOn(store, spy)), spy };
  };
  /** The store's compaction figures (every compacting store reports them). */
  const rewrites = (app: App): number => app.stats().store?.rewrites ?? Number.NaN;

  it('compact() twice in a row, before the first took its snapshot: one compaction, the same result', async () => {
    // given
    const spiedApp = await spied();
    if (spiedApp === null) return;
    const { app, spy } = spiedApp;
    for (let i = 0; i < 20; i++) await app.execute(new Put(`k${i}`, i));
    const before = rewrites(app);
    // when
    const first = app.compact();
    const second = app.compact();
    // then
    assert.equal(spy.taken, 0);
    const [a, b] = await Promise.all([first, second]);
    assert.equal(b, a);
    assert.equal(a.seq, 20);
    assert.equal(spy.taken, 1);
    assert.equal(rewrites(app), before + 1);
  });

  it('compact() after the running one took its snapshot: several calls, one follow-up covering what came meanwhile', async () => {
    // given: a compaction that has taken its snapshot, then commands it cannot cover
    const spiedApp = await spied();
    if (spiedApp === null) return;
    const { app, spy } = spiedApp;
    await Promise.all(Array.from({ length: 2000 }, (_, i) => app.execute(new Put(`key:${i}`, i))));
    const before = rewrites(app);
    const first = app.compact();
    await until(() => spy.taken === 1);
    await app.execute(new Count('meanwhile', 1));
    const last = await app.execute(new Count('meanwhile', 1));
    // when: several calls in a row
    const running = app.stats().store?.rewriteInProgress;
    const calls = [app.compact(), app.compact(), app.compact()];
    // then: the first is not joined; one more compaction runs (queued if the first still runs)
    assert.equal(app.stats().store?.rewriteScheduled, running);
    const [a, ...later] = await Promise.all([first, ...calls]);
    for (const r of later) assert.equal(r, later[0]);
    assert.notEqual(later[0], a);
    assert.ok(a.seq < last.firstSeq - 1, `the first covers up to ${a.seq}, before the commands`);
    assert.ok(later[0].seq >= last.lastSeq, `the follow-up covers ${later[0].seq} ≥ ${last.lastSeq}`);
    assert.equal(spy.taken, 2);
    assert.equal(rewrites(app), before + 2);
    const live = state(app);
    assert.equal(live.meanwhile, 2);
    assert.deepEqual(state(await reopen(app)), live);
  });

  it('a failed compaction is counted, leaves the log loading the same state, and the next one resets the count', async () => {
    // given
    const spiedApp = await spied();
    if (spiedApp === null) return;
    const { app, spy } = spiedApp;
    await app.execute(new Put('a', 1));
    // when: the snapshot fails (as a compaction fails on a full disk)
    spy.failNext = 1;
    await assert.rejects(app.compact(), /snapshot refused/);
    // then
    assert.deepEqual(pick(app.stats()), {
      lastBgrewriteStatus: 'err',
      rewritesConsecutiveFailures: 1,
      rewriteInProgress: false,
      rewriteScheduled: false,
    });
    await app.execute(new Put('b', 2));
    const result = await app.compact();
    assert.equal(result.seq, 2);
    assert.deepEqual(pick(app.stats()), {
      lastBgrewriteStatus: 'ok',
      rewritesConsecutiveFailures: 0,
      rewriteInProgress: false,
      rewriteScheduled: false,
    });
    const live = state(app);
    assert.deepEqual(state(await reopen(app)), live);
  });
}

/** The store, with its context's snapshot source counted (and failing on demand). */
function spyOn(store: EventStore, spy: SnapshotSpy): EventStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'open') {
        return (context: StoreContext) =>
          target.open({
            ...context,
            snapshots: {
              takeSnapshot: () => {
                spy.taken++;
                if (spy.failNext > 0) {
                  spy.failNext--;
                  throw new Error('snapshot refused (conformance test)');
                }
                return context.snapshots.takeSnapshot();
              },
            },
          });
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Yields to the event loop until `condition` holds (a bounded number of turns, no clock). */
async function until(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns++) {
    if (turns > 1_000_000) throw new Error('the condition never held');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function pick(stats: ReturnType<App['stats']>): Record<string, unknown> {
  const { lastBgrewriteStatus, rewritesConsecutiveFailures, rewriteInProgress, rewriteScheduled } =
    stats.store ?? {};
  return { lastBgrewriteStatus, rewritesConsecutiveFailures, rewriteInProgress, rewriteScheduled };
}

function state(app: App): Record<string, JsonValue> {
  return Object.fromEntries(app.state.entries());
}
