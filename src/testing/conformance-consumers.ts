import * as assert from 'node:assert/strict';
import type { App } from '../app/app';
import type { CreateAppOptions } from '../app/create-app';
import { canConsume } from '../consumers/consumer-hub';
import type { Subscription } from '../consumers/types';
import { Consumer } from '../decorators/consumer';
import { On } from '../decorators/projection';
import type { AppliedEvent } from '../events/event';
import type { ConsumerRecord, EventGroup, EventStore, RetentionStats } from '../store/event-store';
import type { ConformanceStoreOptions } from './conformance';
import type { TestCase } from './conformance-compaction';
import { Count, Put, PutMany, Refuse } from './fixtures';

/** What the consumer cases need from the store suite. */
export interface ConsumerHelpers {
  readonly it: TestCase;
  /** Opens an app (the conformance classes, and `extra`) on a new store instance on the test's location. */
  readonly openWith: (extra?: Partial<CreateAppOptions>, store?: ConformanceStoreOptions) => Promise<App>;
  /** True when the store under test takes `ConformanceStoreOptions` (see `StoreUnderTest.open`). */
  readonly configurable: () => boolean;
}

/** The app's store (the suite looks at it directly, as a tool would). */
function storeOf(app: App): EventStore {
  return (app as unknown as { store: EventStore }).store;
}

/** Every event seq the groups hold, in order. */
function seqsOf(groups: readonly EventGroup[]): number[] {
  return groups.flatMap((g) => g.events.map((_, i) => g.seq + i));
}

/** The records by name. */
function sortedRecords(records: readonly ConsumerRecord[]): ConsumerRecord[] {
  return [...records].sort((x, y) => x.name.localeCompare(y.name));
}

/** What the app's store says its last compaction kept (`stats().store.retention`). */
function retentionOf(app: App): RetentionStats | undefined {
  return app.stats().store?.retention;
}

/** 1..n */
function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** A handler recording the seqs it was handed. */
function recorder(): { seqs: number[]; handler: (e: AppliedEvent) => void } {
  const seqs: number[] = [];
  return { seqs, handler: (e) => void seqs.push(e.seq) };
}

/** The mailer of the decorator case: what its @On methods were called with. */
const mailed: number[] = [];
@Consumer('conformance-mailer', { from: 'start' })
class Mailer {
  @On('Counted')
  counted(_event: unknown, meta: { seq: number }) {
    mailed.push(meta.seq);
  }
}

/**
 * Durable consumers (`read`, the consumer records, `app.subscribe`) on every store that has the
 * capabilities; a store without them is left alone (consumers are a capability). A consumer is
 * handed every durable event after its position once, in order, whether it catches up or follows
 * the head, and resumes after its stored position.
 */
export function runConsumerConformance({ it, openWith, configurable }: ConsumerHelpers): void {
  /** An app on a store with the consumer capabilities, or null (the case does not apply). */
  const openCapable = async (
    extra?: Partial<CreateAppOptions>,
    store?: ConformanceStoreOptions,
  ): Promise<App | null> => {
    const app = await openWith(extra, store);
    return canConsume(storeOf(app)) ? app : null;
  };

  it('read: the groups after a seq, whole, in order, bounded, even while appends are pending', async () => {
    const app = await openCapable();
    if (app === null) return;
    const store = storeOf(app);
    // given: 30 commands of one event and one of three, some of them not yet durable
    const pending = [
      ...Array.from({ length: 30 }, (_, i) => app.execute(new Put(`k${i}`, i))),
      app.execute(
        new PutMany([
          ['x', 1],
          ['y', 2],
          ['z', 3],
        ]),
      ),
    ];
    // when: reading while they are in flight
    const early = await store.read!(0, 1000);
    await Promise.all(pending);
    // then: what was read is a dense prefix of whole groups
    assert.deepEqual(seqsOf(early), range(1, seqsOf(early).length));
    const all = await store.read!(0, 1000);
    assert.deepEqual(seqsOf(all), range(1, 33));
    assert.equal(all[30].events.length, 3);
    // and: a limit bounds a page; `after` inside a group hands that group whole; the end is []
    const page = await store.read!(10, 5);
    assert.equal(page[0].seq, 11);
    assert.ok(seqsOf(page).length >= 5 && seqsOf(page).length <= 8, `page of ${seqsOf(page).length}`);
    const inside = await store.read!(31, 10);
    assert.equal(inside[0].seq, 31);
    assert.equal(inside[0].events.length, 3);
    assert.deepEqual(await store.read!(33, 10), []);
  });

  it('consumer records: stored in the log’s store, kept across a restart, deleted', async () => {
    // given
    const app = await openCapable();
    if (app === null) return;
    await app.execute(new Put('a', 1));
    const parked = { seq: 1, type: 'SET', error: 'boom', attempts: 3, parkedAt: 1_700_000_000_000 };
    await storeOf(app).saveConsumer!({ name: 'a', position: 1, parked: [parked] });
    await storeOf(app).saveConsumer!({ name: 'b', position: 0, parked: [] });
    await storeOf(app).saveConsumer!({ name: 'b', position: 1, parked: [] });
    // when
    await app.close();
    const again = (await openCapable())!;
    const store = storeOf(again);
    // then
    const records = [...(await store.loadConsumers!())].sort((x, y) => x.name.localeCompare(y.name));
    assert.deepEqual(records, [
      { name: 'a', position: 1, parked: [parked] },
      { name: 'b', position: 1, parked: [] },
    ]);
    assert.equal(await store.deleteConsumer!('a'), true);
    assert.equal(await store.deleteConsumer!('a'), false);
    assert.deepEqual(
      Array.from(await store.loadConsumers!(), (r) => r.name),
      ['b'],
    );
  });

  it('a consumer catches up, goes live while commands keep arriving: no gap, no duplicate', async () => {
    // given: a log of 200 commands, reopened (so the first pages come from the store, not memory)
    const writer = await openCapable();
    if (writer === null) return;
    for (let i = 0; i < 200; i++) await writer.execute(new Count('n', 1));
    await writer.close();
    const app = (await openCapable())!;
    const { seqs, handler } = recorder();
    // when: it subscribes from the start with small pages while 200 more commands arrive
    const sub = await app.subscribe('catch-up', handler, { from: 'start', pageSize: 7 });
    const more = Array.from({ length: 200 }, (_, i) => app.execute(new Put(`k${i % 10}`, i)));
    await Promise.all(more);
    await sub.caughtUp();
    // then: every event once, in order
    assert.deepEqual(seqs, range(1, 400));
    assert.equal(sub.stats().position, 400);
    assert.equal(sub.stats().lag, 0);
    // and: live events keep coming after it caught up
    await app.execute(new Put('late', 1));
    await sub.caughtUp();
    assert.deepEqual(seqs.slice(-1), [401]);
  });

  it('a consumer is handed each event with its envelope: the id, time and metadata events$ reported', async () => {
    // given: 20 commands with metadata, their events as events$ reported them, and a reopen (so
    // a consumer reads the first ones from the store, as logged)
    const writer = await openCapable();
    if (writer === null) return;
    const reported: AppliedEvent[] = [];
    const watching = writer.events$.subscribe((e) => reported.push(e));
    for (let i = 0; i < 20; i++)
      await writer.execute(new Put(`k${i}`, i), { metadata: { correlationId: `r-${i}` } });
    watching.unsubscribe();
    await writer.close();
    const app = (await openCapable())!;
    const handed: AppliedEvent[] = [];
    // when: a consumer reads them from the store, then one more live
    const sub = await app.subscribe('envelope', (e) => void handed.push(e), { from: 'start' });
    await sub.caughtUp();
    const live: AppliedEvent[] = [];
    const watchingLive = app.events$.subscribe((e) => live.push(e));
    await app.execute(new Put('live', 1), { metadata: { correlationId: 'r-live' } });
    watchingLive.unsubscribe();
    await sub.caughtUp();
    // then: the same identity, time and metadata, whichever way the consumer got them
    const pick = (e: AppliedEvent) => ({ seq: e.seq, id: e.id, time: e.time, metadata: e.metadata });
    assert.deepEqual(handed.map(pick), [...reported, ...live].map(pick));
    assert.equal(new Set(handed.map((e) => e.id)).size, 21);
  });

  it('close and resume: the position is stored; from applies only the first time', async () => {
    // given
    let app = (await openCapable())!;
    if (app === null) return;
    for (let i = 0; i < 5; i++) await app.execute(new Put('a', i));
    const first = recorder();
    const sub = await app.subscribe('resume', first.handler, { from: 'start' });
    await sub.caughtUp();
    await sub.close();
    assert.equal(sub.stats().status, 'closed');
    // when: more commands, a restart, and a subscribe that asks for 'now'
    for (let i = 0; i < 3; i++) await app.execute(new Put('b', i));
    await app.close();
    app = (await openCapable())!;
    const second = recorder();
    const resumed = await app.subscribe('resume', second.handler, { from: 'now' });
    await resumed.caughtUp();
    // then: it resumed after its stored position, not at 'now'
    assert.deepEqual(first.seqs, range(1, 5));
    assert.deepEqual(second.seqs, range(6, 8));
  });

  it("'now' starts after the last durable event; { after } after that seq; beyond the end is refused", async () => {
    // given
    const app = await openCapable();
    if (app === null) return;
    for (let i = 0; i < 6; i++) await app.execute(new Put('a', i));
    const now = recorder();
    const after = recorder();
    // when
    const a = await app.subscribe('now', now.handler, { from: 'now' });
    const b = await app.subscribe('after', after.handler, { from: { after: 4 } });
    await app.execute(new Put('b', 1));
    await a.caughtUp();
    await b.caughtUp();
    // then
    assert.deepEqual(now.seqs, [7]);
    assert.deepEqual(after.seqs, [5, 6, 7]);
    await assert.rejects(
      app.subscribe('far', () => {}, { from: { after: 99 } }),
      {
        code: 'CONSUMER',
        message: /"far".*beyond the end of the log \(seq 7\)/,
      },
    );
    await assert.rejects(
      app.subscribe('now', () => {}),
      { code: 'CONSUMER', message: /already subscribed/ },
    );
  });

  it('a stored position beyond the end of the log is an error naming the consumer', async () => {
    // given: a record ahead of the log (a log cut or replaced)
    const app = await openCapable();
    if (app === null) return;
    await app.execute(new Put('a', 1));
    await storeOf(app).saveConsumer!({ name: 'ahead', position: 50, parked: [] });
    // when / then
    await assert.rejects(
      app.subscribe('ahead', () => {}),
      {
        code: 'CONSUMER',
        message: /consumer "ahead": its stored position is seq 50, beyond the end of the log \(seq 1\)/,
      },
    );
  });

  it('a failing handler parks exactly the events it fails on; the rest go on, and so does everything else', async () => {
    // given: a handler that always fails on seqs 3 and 7, and another that always fails
    const app = await openCapable();
    if (app === null) return;
    for (let i = 0; i < 10; i++) await app.execute(new Put(`k${i}`, i));
    const handled: number[] = [];
    const calls = new Map<number, number>();
    const picky = await app.subscribe(
      'picky',
      (e) => {
        calls.set(e.seq, (calls.get(e.seq) ?? 0) + 1);
        if (e.seq === 3 || e.seq === 7) throw new Error(`no ${e.seq}`);
        handled.push(e.seq);
      },
      { maxAttempts: 3, retryDelayMs: 1, maxRetryDelayMs: 2 },
    );
    const broken = await app.subscribe(
      'broken',
      () => {
        throw new Error('down');
      },
      { maxAttempts: 2, retryDelayMs: 1, maxRetryDelayMs: 1 },
    );
    const other = recorder();
    const healthy = await app.subscribe('healthy', other.handler);
    // when
    await app.execute(new Put('after', 1));
    await Promise.all([picky.caughtUp(), broken.caughtUp(), healthy.caughtUp()]);
    // then: exactly 3 and 7 parked, each after 3 attempts; the others handled once, in order
    assert.deepEqual(handled, [1, 2, 4, 5, 6, 8, 9, 10, 11]);
    assert.equal(calls.get(3), 3);
    assert.equal(calls.get(7), 3);
    assert.equal(calls.get(4), 1);
    assert.deepEqual(picky.stats(), {
      name: 'picky',
      position: 11,
      lag: 0,
      retries: 4,
      parked: 2,
      status: 'live',
    });
    const record = (await storeOf(app).loadConsumers!()).find((r) => r.name === 'picky')!;
    assert.deepEqual(
      record.parked.map((p) => [p.seq, p.type, p.error, p.attempts]),
      [
        [3, 'SET', 'no 3', 3],
        [7, 'SET', 'no 7', 3],
      ],
    );
    // and: another consumer's failures stopped neither the healthy one nor the commands
    assert.equal(broken.stats().parked, 11);
    assert.deepEqual(other.seqs, range(1, 11));
  });

  it('removeConsumer forgets the position and the parked events', async () => {
    // given
    const app = await openCapable();
    if (app === null) return;
    for (let i = 0; i < 3; i++) await app.execute(new Put('a', i));
    const sub = await app.subscribe('gone', () => {});
    await sub.caughtUp();
    // when
    assert.equal(await app.removeConsumer('gone'), true);
    const again = recorder();
    const fresh = await app.subscribe('gone', again.handler, { from: 'start' });
    await fresh.caughtUp();
    // then
    assert.equal(sub.stats().status, 'closed');
    assert.deepEqual(again.seqs, [1, 2, 3]);
    assert.equal(await app.removeConsumer('never'), false);
  });

  it("'start' on a log compacted before the consumer existed is refused, naming the first event", async () => {
    // given: a compacted log
    const app = await openCapable();
    if (app === null || typeof storeOf(app).compact !== 'function') return;
    for (let i = 0; i < 5; i++) await app.execute(new Put('a', i));
    const compaction = await app.compact();
    await app.execute(new Put('b', 1));
    // when
    const got = recorder();
    const started = await app.subscribe('late', got.handler, { from: 'start' }).then(
      (sub) => sub,
      (err: Error & { code?: string }) => err,
    );
    // then: refused, naming the first event it could get (a store keeping history still has them all)
    let first = 1;
    if (started instanceof Error) {
      first = compaction.seq + 1;
      assert.equal(started.code, 'CONSUMER');
      assert.match(
        started.message,
        new RegExp(
          `consumer "late": .*the first event it could get is seq ${first}: subscribe with \\{ from: \\{ after: ${first - 1} \\} \\}`,
        ),
      );
      const sub = await app.subscribe('late', got.handler, { from: { after: first - 1 } });
      await sub.caughtUp();
    } else {
      await started.caughtUp();
    }
    assert.deepEqual(got.seqs, range(first, 6));
  });

  it('a consumer behind a compaction keeps its events: it resumes with no gap and no duplicate', async () => {
    // given: "behind" handled up to seq 3 and "ender" up to seq 43, both closed; the log has
    // groups of one and of three events
    const app = await openCapable();
    if (app === null || typeof storeOf(app).compact !== 'function') return;
    const store = storeOf(app);
    for (let i = 1; i <= 3; i++) await app.execute(new Put('a', i));
    const behind = await app.subscribe('behind', () => {}, { from: 'start' });
    await behind.caughtUp();
    await behind.close();
    for (let i = 0; i < 10; i++)
      await app.execute(
        new PutMany([
          ['x', i],
          ['y', i],
          ['z', i],
        ]),
      );
    for (let i = 34; i <= 43; i++) await app.execute(new Put('a', i));
    const ender = await app.subscribe('ender', () => {}, { from: 'start' });
    await ender.caughtUp();
    await ender.close();
    const before = sortedRecords(await store.loadConsumers!());
    // when: the log is compacted, then grows
    const compaction = await app.compact();
    await app.execute(new Put('b', 44));
    // then: the records are as they were (seqs never change), and the store says who holds what
    assert.equal(compaction.seq, 43);
    assert.deepEqual(sortedRecords(await store.loadConsumers!()), before);
    assert.deepEqual(retentionOf(app), {
      seq: 43,
      heldBy: { name: 'behind', position: 3 },
      keptFrom: 4,
      keptEvents: 40,
      stale: [],
    });
    // and: each resumes after its own position: every event once, in order
    const e = recorder();
    const enderAgain = await app.subscribe('ender', e.handler);
    await enderAgain.caughtUp();
    assert.deepEqual(e.seqs, [44]);
    const b = recorder();
    const behindAgain = await app.subscribe('behind', b.handler, { pageSize: 4 });
    await behindAgain.caughtUp();
    assert.deepEqual(b.seqs, range(4, 44));
  });

  it('kept events are never replayed, and the size that triggers a rewrite leaves them out', async () => {
    // given: 120 commands of 1 KB values, compacted twice: once while "holder" (at seq 0)
    // keeps them all, once after it was removed
    let app = await openCapable();
    if (app === null || typeof storeOf(app).compact !== 'function') return;
    const big = 'v'.repeat(1024);
    for (let i = 0; i < 120; i++) await app.execute(new Put(`k${i % 4}`, `${big}${i}`));
    await storeOf(app).saveConsumer!({ name: 'holder', position: 0, parked: [] });
    await app.compact();
    assert.equal(retentionOf(app)?.keptEvents, 120);
    // when: the log is reopened by a fresh app, which appends 2 commands
    await app.close();
    app = (await openCapable())!;
    await app.execute(new Put('t', 1));
    await app.execute(new Put('t', 2));
    // then: it read the snapshot and the tail only, and has the whole state
    assert.equal(app.stats().entriesReplayed, 4);
    assert.equal(app.stats().groupsReplayed, 0);
    assert.deepEqual(app.state.get('k3'), `${big}119`);
    const held = app.stats().store?.currentSize;
    // and: the size is that of a log that keeps nothing (the kept events are 120 KB of it)
    assert.equal(await app.removeConsumer('holder'), true);
    await app.compact();
    const free = app.stats().store?.currentSize;
    if (held !== undefined && free !== undefined)
      assert.ok(held < free + 30 * 1024, `size with kept events ${held}, without ${free}`);
    assert.equal(retentionOf(app)?.keptEvents, 0);
  });

  it('kept events are dropped by the next compaction once every consumer has passed them', async () => {
    // given: a consumer at seq 0, 20 commands, a compaction that keeps them for it
    const app = await openCapable();
    if (app === null || typeof storeOf(app).compact !== 'function') return;
    const store = storeOf(app);
    const slow = await app.subscribe('slow', () => {}, { from: 'start' });
    await slow.close();
    for (let i = 0; i < 20; i++) await app.execute(new Put('a', i));
    await app.compact();
    assert.equal(retentionOf(app)?.keptEvents, 20);
    assert.deepEqual(seqsOf(await store.read!(0, 3)).slice(0, 1), [1]);
    // when: it catches up (its position is stored on close), and the log is compacted again
    await app.execute(new Put('b', 21));
    const got = recorder();
    const again = await app.subscribe('slow', got.handler);
    await again.caughtUp();
    await again.close();
    await app.compact();
    // then: nothing is kept; the events are gone
    assert.deepEqual(got.seqs, range(1, 21));
    assert.deepEqual(retentionOf(app), { seq: 21, keptEvents: 0, stale: [] });
    await assert.rejects(store.read!(0, 1), { code: 'LOG_COMPACTED' });
  });

  it('removeConsumer releases what the consumer held', async () => {
    // given: a consumer at seq 0 holding a compacted log
    const app = await openCapable();
    if (app === null || typeof storeOf(app).compact !== 'function') return;
    const sub = await app.subscribe('gone', () => {}, { from: 'start' });
    await sub.close();
    for (let i = 0; i < 10; i++) await app.execute(new Put('a', i));
    await app.compact();
    assert.equal(retentionOf(app)?.keptEvents, 10);
    // when
    await app.removeConsumer('gone');
    await app.execute(new Put('a', 11));
    await app.compact();
    // then
    assert.deepEqual(retentionOf(app), { seq: 11, keptEvents: 0, stale: [] });
    await assert.rejects(storeOf(app).read!(0, 1), { code: 'LOG_COMPACTED' });
  });

  it('a consumer beyond maxConsumerLag is marked stale, releases the log, and resetConsumer brings it back', async () => {
    // given: maxConsumerLag 10; "idle" stopped at seq 0, "stuck" running but held inside its
    // handler at seq 1, "near" 5 events behind; 30 commands
    if (!configurable()) return;
    const app = await openCapable(undefined, { maxConsumerLag: 10 });
    if (app === null || typeof storeOf(app).compact !== 'function') return;
    const store = storeOf(app);
    const idle = await app.subscribe('idle', () => {}, { from: 'start' });
    await idle.close();
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stuckSeqs: number[] = [];
    const stuck = await app.subscribe(
      'stuck',
      async (e) => {
        stuckSeqs.push(e.seq);
        await held;
      },
      { from: 'start', pageSize: 1 },
    );
    for (let i = 1; i <= 25; i++) await app.execute(new Put('a', i));
    const near = await app.subscribe('near', () => {}, { from: 'start' });
    await near.caughtUp();
    await near.close();
    for (let i = 26; i <= 30; i++) await app.execute(new Put('a', i));
    // when
    await app.compact();
    // then: both far ones are marked stale in their records, and only "near" holds the log
    const records = sortedRecords(await store.loadConsumers!());
    assert.deepEqual(
      records.map((r) => [r.name, r.stale?.seq, r.stale?.lag]),
      [
        ['idle', 30, 30],
        ['near', undefined, undefined],
        ['stuck', 30, 30],
      ],
    );
    assert.deepEqual(retentionOf(app), {
      seq: 30,
      heldBy: { name: 'near', position: 25 },
      keptFrom: 26,
      keptEvents: 5,
      stale: ['idle', 'stuck'],
    });
    // and: the running one stops with status 'stale' once its handler returns, naming the way out
    release();
    await assert.rejects(stuck.caughtUp(), {
      code: 'CONSUMER',
      message: /consumer "stuck": is stale: .*app\.resetConsumer\("stuck", from\)/,
    });
    assert.equal(stuck.stats().status, 'stale');
    assert.deepEqual(stuckSeqs.slice(0, 1), [1]);
    // and: subscribing a stale name is refused the same way
    await assert.rejects(
      app.subscribe('idle', () => {}),
      { code: 'CONSUMER', message: /consumer "idle": is stale: .*app\.resetConsumer\("idle", from\)/ },
    );
    // when: both are reset; "stuck" runs in this app and is started again with its handler
    await app.resetConsumer('idle', 'now');
    await app.resetConsumer('stuck', { after: 27 });
    const got = recorder();
    const idleAgain = await app.subscribe('idle', got.handler);
    await app.execute(new Put('a', 31));
    await idleAgain.caughtUp();
    const restarted = app.consumer('stuck')!;
    await restarted.caughtUp();
    // then: each goes on from where it was reset, and neither is stale any more
    assert.deepEqual(got.seqs, [31]);
    assert.deepEqual(stuckSeqs.slice(-4), [28, 29, 30, 31]);
    assert.equal(restarted.stats().status, 'live');
    assert.deepEqual(
      sortedRecords(await store.loadConsumers!()).map((r) => [r.name, r.stale]),
      [
        ['idle', undefined],
        ['near', undefined],
        ['stuck', undefined],
      ],
    );
    await assert.rejects(app.resetConsumer('never', 'start'), {
      code: 'CONSUMER',
      message: /consumer "never": has no stored record/,
    });
  });

  it('a parked event stays retryable after compaction dropped it from the log', async () => {
    // given: a consumer that parked seq 2, went on to the head, and a compaction that kept nothing
    const app = await openCapable();
    if (app === null || typeof storeOf(app).compact !== 'function') return;
    const store = storeOf(app);
    for (let i = 1; i <= 4; i++)
      await app.execute(new Put(`k${i}`, i), { metadata: { correlationId: `c${i}` } });
    const sub = await app.subscribe(
      'mailer',
      (e) => {
        if (e.seq === 2) throw new Error('smtp down');
      },
      { from: 'start', maxAttempts: 1 },
    );
    await sub.caughtUp();
    await sub.close();
    await app.compact();
    await assert.rejects(store.read!(1, 1), { code: 'LOG_COMPACTED' });
    // when: the parked event is marked for retry (as `appendonly consumers retry` does) and the
    // consumer starts again
    const record = (await store.loadConsumers!()).find((r) => r.name === 'mailer')!;
    await store.saveConsumer!({ ...record, parked: record.parked.map((p) => ({ ...p, retry: true })) });
    const handed: AppliedEvent[] = [];
    const again = await app.subscribe('mailer', (e) => void handed.push(e));
    await again.caughtUp();
    // then: it is handed the event as it was, from the copy its parked entry kept
    assert.deepEqual(
      handed.map((e) => [e.seq, e.type, e.data, e.metadata]),
      [[2, 'SET', { key: 'k2', value: 2 }, { correlationId: 'c2' }]],
    );
    assert.deepEqual((await store.loadConsumers!()).find((r) => r.name === 'mailer')!.parked, []);
  });

  it('@Consumer classes with @On methods run through createApp({ consumers })', async () => {
    // given
    mailed.length = 0;
    const probe = await openCapable();
    if (probe === null) return;
    await probe.close();
    const app = (await openCapable({ consumers: [Mailer] }))!;
    // when
    await app.execute(new Count('n', 1));
    await app.execute(new Put('x', 1));
    await app.execute(new Count('n', 2));
    const sub: Subscription = app.consumer('conformance-mailer')!;
    await sub.caughtUp();
    // then: its Counted events, by seq; the SET moved its position on
    assert.deepEqual(mailed, [1, 3]);
    assert.equal(sub.stats().position, 3);
  });

  it('a reaction: its commands in the log once, caused by the event, its position stored with them', async () => {
    const app = await openCapable();
    if (app === null) return;
    if (storeOf(app).reactions !== true) return; // the refusal is the next case's
    // given: three Counted events, two of them with a correlation id
    await app.execute(new Count('n', 1), { metadata: { correlationId: 'order-1' } });
    await app.execute(new Count('n', 2), { metadata: { correlationId: 'order-2' } });
    await app.execute(new Count('n', 3));
    // and: a consumer reacting to each Counted with two commands (three SETs)
    const react = (e: AppliedEvent) =>
      e.type === 'Counted'
        ? [
            new Put(`seen:${e.seq}`, e.seq),
            new PutMany([
              [`twice:${e.seq}`, 1],
              ['last', e.seq],
            ]),
          ]
        : undefined;
    const sub = await app.subscribe('reactor', react, { from: 'start' });
    // and: from here on it never stores its position itself, as a process killed before each checkpoint
    Object.assign(storeOf(app), {
      saveConsumer: () => Promise.reject(new Error('the process is gone')),
    });
    await sub.caughtUp();
    // when: the app stops, and a fresh one resumes the consumer and takes one more event
    await app.close();
    const fresh = (await openCapable())!;
    const again = await fresh.subscribe('reactor', react, { from: 'start' });
    await fresh.execute(new Count('n', 4));
    await again.caughtUp();
    // then: one reaction per Counted, each one group of its commands' events, caused by its event
    const groups = await storeOf(fresh).read!(0, 10_000);
    const byId = new Map(groups.flatMap((g) => g.events.map((_, i) => [g.seq + i, g.ids![i]] as const)));
    const reactions = groups.filter((g) => g.events.length === 3);
    assert.deepEqual(
      reactions.map((g) => g.events.map((e) => (e.data as { key: string }).key)),
      [1, 2, 3, 13].map((s) => [`seen:${s}`, `twice:${s}`, 'last']),
    );
    assert.deepEqual(
      reactions.map((g) => g.metadata),
      [
        { correlationId: 'order-1', causationId: byId.get(1) },
        { correlationId: 'order-2', causationId: byId.get(2) },
        { correlationId: byId.get(3), causationId: byId.get(3) },
        { correlationId: byId.get(13), causationId: byId.get(13) },
      ],
    );
    assert.equal(fresh.state.get('last'), 13);
    // and: the stored position is past the last triggering event, with no checkpoint of the first app
    const record = (await storeOf(fresh).loadConsumers!()).find((r) => r.name === 'reactor')!;
    assert.ok(record.position >= 13, `position ${record.position}`);
  });

  it('a rejected reaction is a handler failure: retried, then parked; nothing of it is appended', async () => {
    // given: a consumer whose reaction's second command is refused by its handler
    const app = await openCapable();
    if (app === null) return;
    await app.execute(new Count('n', 1));
    let calls = 0;
    const sub = await app.subscribe(
      'refused',
      () => {
        calls++;
        return [new Put('partial', 1), new Refuse('out of stock')];
      },
      { from: 'start', maxAttempts: 2, retryDelayMs: 1, maxRetryDelayMs: 1 },
    );
    // when
    await sub.caughtUp();
    await sub.close(); // stores the parked event before the record is looked at
    // then: parked after its attempts, the first command's event neither applied nor logged
    assert.equal(calls, 2);
    const record = (await storeOf(app).loadConsumers!()).find((r) => r.name === 'refused')!;
    assert.deepEqual(
      record.parked.map((p) => [p.seq, p.attempts]),
      [[1, 2]],
    );
    const why =
      storeOf(app).reactions === true
        ? /refused: out of stock/
        : /cannot append them with the consumer's position/;
    assert.match(record.parked[0].error, why);
    assert.equal(app.state.has('partial'), false);
    assert.equal(app.stats().lastSeq, 1);
    assert.deepEqual(seqsOf(await storeOf(app).read!(0, 100)), [1]);
  });
}
