import * as assert from 'node:assert/strict';
import type { App } from '../app/app';
import type { AppliedEvent } from '../events/event';
import type { EventStore } from '../store/event-store';
import { type ReplayedRecord, recordingSink } from '../store/replay-sink';
import type { TestCase } from './conformance-compaction';
import { Count, Put, PutMany } from './fixtures';

/** What the replay and delivery cases need from the store suite. */
export interface ReplayHelpers {
  readonly it: TestCase;
  /** Opens an app on a new store instance on the test's location. */
  readonly open: () => Promise<App>;
  /** Closes `app`; the location can then be opened again. */
  readonly close: (app: App) => Promise<void>;
  /** A new store instance on the test's location, not opened. */
  readonly newStore: () => EventStore;
  /** Opens `store` as a tool would and hands its replay to `read`, then closes it. */
  readonly read: (store: EventStore, read: (store: EventStore) => Promise<void>) => Promise<void>;
}

/**
 * The delivery rule and `replay({ after })`, on every store: `events$` reports each command
 * once durable, in order, with dense final numbers; a replay after seq N hands over exactly the
 * commands after N; after a compaction, asking for events it dropped is `LOG_COMPACTED`.
 */
export function runReplayConformance({ it, open, close, newStore, read }: ReplayHelpers): void {
  it('events$ reports every command once it is durable, in order, with its final numbers', async () => {
    const app = await open();
    const seen: AppliedEvent[] = [];
    app.events$.subscribe((e) => seen.push(e));
    const results = await Promise.all([
      ...Array.from({ length: 40 }, (_, i) => app.execute(new Put(`k${i}`, i))),
      app.execute(
        new PutMany([
          ['x', 1],
          ['y', 2],
        ]),
      ),
    ]);
    assert.deepEqual(
      seen.map((e) => e.seq),
      Array.from({ length: 42 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      seen.slice(40).map((e) => e.event.data),
      [
        { key: 'x', value: 1 },
        { key: 'y', value: 2 },
      ],
    );
    assert.equal(results[40].lastSeq, 42);
    assert.deepEqual(app.stats().durableSeq, 42);
  });

  it('replay({ after: N }) hands over exactly the commands after N, without the snapshot', async () => {
    const app = await open();
    for (let i = 0; i < 10; i++) await app.execute(new Count('n', 1));
    await close(app);
    const records: ReplayedRecord[] = [];
    let lastSeq = -1;
    await read(newStore(), async (store) => {
      lastSeq = (await store.replay(recordingSink(records), { after: 6 })).lastSeq;
    });
    assert.deepEqual(
      records.map((r) => (r.kind === 'group' ? r.seq : r.kind)),
      [7, 8, 9, 10],
    );
    assert.equal(lastSeq, 10);
  });

  it('replay({ after: N }) before the last compaction’s snapshot rejects with LOG_COMPACTED naming the first event left', async () => {
    const app = await open();
    const { store } = app as unknown as { store: EventStore };
    if (typeof store.compact !== 'function') return;
    for (let i = 0; i < 5; i++) await app.execute(new Count('n', 1));
    await app.compact();
    await app.execute(new Count('n', 1));
    await close(app);
    await read(newStore(), async (reader) => {
      await assert.rejects(reader.replay(recordingSink([]), { after: 2 }), {
        code: 'LOG_COMPACTED',
        firstAvailable: 6,
      });
      const records: ReplayedRecord[] = [];
      await reader.replay(recordingSink(records), { after: 5 });
      assert.deepEqual(
        records.map((r) => (r.kind === 'group' ? r.seq : r.kind)),
        [6],
      );
    });
  });
}
