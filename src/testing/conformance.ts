import assert from 'node:assert/strict';
import type { App } from '../app/app';
import { type CreateAppOptions, createApp } from '../app/create-app';
import type { JsonValue } from '../events/json';
import { AppClosedError, PersistenceError, StoreLockedError, UnknownCommandError } from '../errors';
import type { EventStore } from '../store/event-store';
import { type ReplayedRecord, recordingSink } from '../store/replay-sink';
import { KeyValueState } from '../state/key-value-state';
import { silentLogger } from '../runtime/logger';
import { runCompactionConformance } from './conformance-compaction';
import { runConsumerConformance } from './conformance-consumers';
import { runEnvelopeConformance } from './conformance-envelope';
import { runReplayConformance } from './conformance-replay';
import { runVersionConformance } from './conformance-versions';
import { Count, conformanceClasses, Explode, FlushAll, Put, PutMany, Remove } from './fixtures';

/**
 * Options a case asks the store under test to take, on top of the factory's own: a store with
 * consumers and compaction must honour them (the retention cases need a small `maxConsumerLag`).
 */
export interface ConformanceStoreOptions {
  /** The store's `maxConsumerLag` (see the shared store options). */
  readonly maxConsumerLag?: number;
}

/** One location (folder, file, memory) for one conformance test. */
export interface StoreUnderTest {
  /**
   * A new store instance on this location: called again to reopen it after close. `options`,
   * when given, go to the store's constructor with the factory's own. An `open` declared
   * without a parameter (as before options existed) skips the cases that need them.
   */
  open(options?: ConformanceStoreOptions): EventStore;
  /** Removes what the test left. */
  cleanup?(): void | Promise<void>;
}

/**
 * The test functions the suite is declared with: jest's and vitest's globals, vitest's exports,
 * or `node:test`'s (`import { describe, it, beforeEach, afterEach } from 'node:test'`).
 */
export interface ConformanceTestApi {
  describe(name: string, fn: () => void): unknown;
  it(name: string, fn: () => Promise<void> | void): unknown;
  beforeEach(fn: () => Promise<void> | void): unknown;
  afterEach(fn: () => Promise<void> | void): unknown;
}

const API_NAMES = ['describe', 'it', 'beforeEach', 'afterEach'] as const;

/** `api` if given, else the runner's globals (jest, vitest with `globals: true`); throws naming what to pass. */
function testApi(api: ConformanceTestApi | undefined): ConformanceTestApi {
  if (api !== undefined) return api;
  const g = globalThis as Record<string, unknown>;
  const missing = API_NAMES.filter((n) => typeof g[n] !== 'function');
  if (missing.length > 0) {
    throw new Error(
      `runStoreConformance: no global ${missing.join(', ')}; pass the test functions as its third argument, ` +
        "e.g. runStoreConformance(name, factory, { describe, it, beforeEach, afterEach }) with them imported from 'node:test' or 'vitest'",
    );
  }
  return {
    describe: g.describe as ConformanceTestApi['describe'],
    it: g.it as ConformanceTestApi['it'],
    beforeEach: g.beforeEach as ConformanceTestApi['beforeEach'],
    afterEach: g.afterEach as ConformanceTestApi['afterEach'],
  };
}

/**
 * The behaviour every store must show, as a test suite: call it from a test file, once per
 * configuration (e.g. once per fsync policy). `factory` gives a fresh, empty location per test.
 * It asserts with `node:assert/strict`, so it runs under any runner: `api` gives the runner's
 * describe / it / beforeEach / afterEach, and defaults to the globals of jest (or vitest with
 * `globals: true`).
 *
 * ```ts
 * runStoreConformance('AofStore always', () => { const dir = tmp(); return { open: () => new AofStore({ dir, appendfsync: 'always' }) }; });
 * // node:test (or vitest without globals):
 * import { afterEach, beforeEach, describe, it } from 'node:test';
 * runStoreConformance('MyStore', factory, { describe, it, beforeEach, afterEach });
 * ```
 */
export function runStoreConformance(
  name: string,
  factory: () => StoreUnderTest | Promise<StoreUnderTest>,
  api?: ConformanceTestApi,
): void {
  const { describe, it, beforeEach, afterEach } = testApi(api);
  describe(`${name}: store conformance`, () => {
    let sut: StoreUnderTest;
    const apps: App[] = [];
    const open = async (store: EventStore = sut.open()) => {
      const app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
      apps.push(app);
      return app;
    };
    const reopen = async (app: App) => {
      await app.close();
      return open();
    };

    beforeEach(async () => {
      sut = await factory();
    });
    afterEach(async () => {
      for (const app of apps.splice(0)) await app.close().catch(() => {});
      await sut.cleanup?.();
    });

    it('opens an empty location as an empty state', async () => {
      const app = await open();
      assert.equal(app.state.size, 0);
      assert.equal(app.stats().lastSeq, 0);
    });

    it('replays what was appended: same state, same sequence numbers', async () => {
      // given
      const app = await open();
      const first = await app.execute(new Put('a', 1));
      await app.execute(new Count('n', 2));
      await app.execute(new Count('n', 3));
      const last = await app.execute(new Remove(['a']));
      // when
      const reopened = await reopen(app);
      // then
      assert.equal(first.firstSeq, 1);
      assert.equal(last.lastSeq, 4);
      assert.deepEqual(state(reopened), { n: 5 });
      assert.equal((await reopened.execute(new Put('b', true))).firstSeq, 5);
    });

    it('keeps values exactly: unicode, CR LF, nested JSON, numbers, empty strings', async () => {
      const values: Record<string, JsonValue> = {
        plain: 'hello',
        crlf: 'line1\r\nline2\r\n*3\r\n$3\r\nSET',
        unicode: 'ünïcødé 🚀 日本語',
        empty: '',
        nested: { a: [1, 2, { b: null, c: 'x\n' }], d: { e: true, f: -0.5 } },
        big: 'x'.repeat(100_000),
        number: 1234567.891,
        negative: -42,
        falsy: false,
        nothing: null,
        'key with spaces\r\nand lines': 'ok',
      };
      const app = await open();
      for (const [k, v] of Object.entries(values)) await app.execute(new Put(k, v));
      assert.deepEqual(state(await reopen(app)), values);
    });

    it('replays a multi-event command as one group', async () => {
      const app = await open();
      const result = await app.execute(
        new PutMany([
          ['x', 1],
          ['y', 2],
          ['z', 3],
        ]),
      );
      assert.deepEqual([result.firstSeq, result.lastSeq], [1, 3]);
      await app.close();
      const store = sut.open();
      const groups = (await replayAll(store)).filter((r) => r.kind === 'group');
      assert.equal(groups.length, 1);
      const group = groups[0];
      assert.ok(group.kind === 'group');
      assert.equal(group.seq, 1);
      assert.deepEqual(
        group.events.map((e) => e.type),
        ['SET', 'SET', 'SET'],
      );
    });

    it('a command whose projection throws is rolled back and never logged', async () => {
      // given
      const app = await open();
      await app.execute(new Put('k', 'before'));
      // when
      await assert.rejects(app.execute(new Explode('k')), { message: /projection refused k/ });
      // then: live state rolled back, later commands run, the log holds neither half of it
      assert.equal(app.state.get('k'), 'before');
      const next = await app.execute(new Put('other', 1));
      assert.equal(next.firstSeq, 2);
      assert.deepEqual(state(await reopen(app)), { k: 'before', other: 1 });
    });

    it('applies and logs 64 commands in flight in dispatch order', async () => {
      const app = await open();
      const results = await Promise.all(Array.from({ length: 64 }, (_, i) => app.execute(new Count('c', i))));
      assert.deepEqual(
        results.map((r) => r.firstSeq),
        Array.from({ length: 64 }, (_, i) => i + 1),
      );
      await Promise.all(Array.from({ length: 64 }, (_, i) => app.execute(new Put('last', i))));
      const live = state(app);
      const replayed = state(await reopen(app));
      assert.deepEqual(replayed, live);
      assert.deepEqual(replayed, { c: (63 * 64) / 2, last: 63 });
    });

    it('logs FLUSHALL and replays it (the classic AOF trap)', async () => {
      const app = await open();
      await app.execute(new Put('a', 1));
      await app.execute(new FlushAll());
      await app.execute(new Put('b', 2));
      assert.deepEqual(state(await reopen(app)), { b: 2 });
    });

    it('compaction keeps the state and the sequence numbers', async () => {
      // given
      const app = await open();
      for (let i = 0; i < 50; i++) await app.execute(new Put(`k${i % 10}`, i));
      await app.execute(new Remove(['k0']));
      // when
      if (!(await canCompact(app))) return;
      const result = await app.compact();
      await app.execute(new Count('after', 1));
      // then
      assert.equal(result.seq, 51);
      assert.equal(result.keys, 9);
      const rewrites = app.stats().store?.rewrites;
      if (rewrites !== undefined) assert.ok(rewrites >= 1, `rewrites: ${rewrites}, expected at least 1`);
      const live = state(app);
      const reopened = await reopen(app);
      assert.deepEqual(state(reopened), live);
      assert.equal((await reopened.execute(new Put('z', 0))).firstSeq, 53);
    });

    it('takes commands while it compacts, and loses none of them', async () => {
      const app = await open();
      await Promise.all(Array.from({ length: 2000 }, (_, i) => app.execute(new Put(`key:${i}`, { i }))));
      if (!(await canCompact(app))) return;
      const during: Promise<unknown>[] = [];
      const compaction = app.compact();
      for (let i = 0; i < 500; i++) during.push(app.execute(new Count('during', 1)));
      for (let i = 0; i < 100; i++) during.push(app.execute(new Remove([`key:${i}`])));
      await Promise.all([compaction, ...during]);
      const live = state(app);
      assert.equal(live.during, 500);
      assert.equal(Object.keys(live).length, 1901);
      assert.deepEqual(state(await reopen(app)), live);
    });

    it('compacts again after more commands, and after a FLUSHALL', async () => {
      const app = await open();
      await app.execute(new Put('a', 1));
      if (!(await canCompact(app))) return;
      await app.compact();
      await app.execute(new Put('b', 2));
      await app.compact();
      await app.execute(new FlushAll());
      await app.execute(new Put('c', 3));
      await app.compact();
      await app.execute(new Put('d', 4));
      assert.deepEqual(state(await reopen(app)), { c: 3, d: 4 });
    });

    it('close() flushes every command already dispatched', async () => {
      const app = await open();
      const pending = Array.from({ length: 300 }, (_, i) => app.execute(new Put(`p${i}`, i)));
      await app.close();
      await Promise.all(pending);
      assert.equal(Object.keys(state(await open())).length, 300);
    });

    it('reopens after close, again and again', async () => {
      let app = await open();
      for (let round = 0; round < 5; round++) {
        await app.execute(new Count('rounds', 1));
        if (round === 2 && (await canCompact(app))) await app.compact();
        app = await reopen(app);
      }
      assert.deepEqual(state(app), { rounds: 5 });
    });

    it('refuses commands after close with AppClosedError, and unknown commands by name', async () => {
      const app = await open();
      class NotRegistered {}
      await assert.rejects(app.execute(new NotRegistered()), UnknownCommandError);
      await assert.rejects(app.execute(new NotRegistered()), { message: /NotRegistered/ });
      await app.close();
      await assert.rejects(app.execute(new Put('a', 1)), AppClosedError);
      await assert.rejects(app.compact(), AppClosedError);
    });

    it('allows one writer: a second open of the same location fails while the first is open', async () => {
      const app = await open();
      await app.execute(new Put('a', 1));
      const second = sut.open();
      if (second.sharedLog === true) {
        // A shared log takes any number of instances: the second opens and reads the first's commands.
        const other = await open(second);
        assert.deepEqual(state(other), { a: 1 });
        await other.close();
      } else await assert.rejects(open(second), StoreLockedError);
      await app.execute(new Put('b', 2));
      assert.deepEqual(state(await reopen(app)), { a: 1, b: 2 });
    });

    it('reports persistence fields with Redis names', async () => {
      const app = await open();
      await app.execute(new Put('a', 1));
      const stats = app.stats();
      assert.equal(stats.lastSeq, 1);
      assert.equal(stats.durableSeq, 1);
      assert.equal(stats.keys, 1);
      const store = stats.store;
      if (store === undefined) return; // a store without the stats capability
      if (store.appendfsync !== undefined)
        assert.ok(
          ['always', 'everysec', 'no'].includes(store.appendfsync),
          `appendfsync: ${store.appendfsync}`,
        );
      if (store.lastWriteStatus !== undefined) assert.equal(store.lastWriteStatus, 'ok');
      if (store.lastBgrewriteStatus !== undefined) assert.equal(store.lastBgrewriteStatus, 'ok');
      if (store.rewriteInProgress !== undefined) assert.equal(store.rewriteInProgress, false);
      if (store.currentSize !== undefined) assert.equal(typeof store.currentSize, 'number');
    });

    /** Opens `store` as a tool would (no app on it) and hands it to `read`, then closes it. */
    const read = async (store: EventStore, work: (store: EventStore) => Promise<void>): Promise<void> => {
      await store.open({
        snapshots: { takeSnapshot: () => new KeyValueState().takeSnapshot(0) },
        logger: silentLogger,
        clock: { now: Date.now },
      });
      try {
        await work(store);
      } finally {
        await store.close();
      }
    };
    /** Opens an app with these options on a new store instance; closed after the test. */
    const openWith = async (options: Omit<CreateAppOptions, 'store'>): Promise<App> => {
      const app = await createApp({ logger: silentLogger, ...options, store: sut.open() });
      apps.push(app);
      return app;
    };
    runCompactionConformance({ it, newStore: () => sut.open(), open, reopen });
    runReplayConformance({
      it,
      open: () => open(),
      close: (app) => app.close(),
      newStore: () => sut.open(),
      read,
    });
    runVersionConformance({
      it,
      newStore: () => sut.open(),
      openWith,
      read,
    });

    runEnvelopeConformance({
      it,
      newStore: () => sut.open(),
      openWith,
      read,
    });

    runConsumerConformance({
      it,
      configurable: () => sut.open.length > 0,
      openWith: async (extra, storeOptions) => {
        const app = await createApp({
          ...conformanceClasses,
          logger: silentLogger,
          ...extra,
          store: storeOptions === undefined ? sut.open() : sut.open(storeOptions),
        });
        apps.push(app);
        return app;
      },
    });

    it('types its write errors as PersistenceError', () => {
      assert.equal(
        PersistenceError.from('write', Object.assign(new Error('no space'), { code: 'ENOSPC' })).code,
        'ENOSPC',
      );
    });
  });
}

/**
 * True when the app's store compacts; otherwise checks that `compact()` says so with
 * `CANNOT_COMPACT` (compaction is a capability, not part of the four-method contract).
 */
async function canCompact(app: App): Promise<boolean> {
  const { store } = app as unknown as { store: EventStore };
  if (typeof store.compact === 'function') return true;
  await assert.rejects(app.compact(), { code: 'CANNOT_COMPACT' });
  return false;
}

/** Reads a store's whole replay (for small test logs only). */
export async function replayAll(store: EventStore): Promise<ReplayedRecord[]> {
  const kv = new KeyValueState();
  await store.open({
    snapshots: { takeSnapshot: () => kv.takeSnapshot(0) },
    logger: silentLogger,
    clock: { now: Date.now },
  });
  const out: ReplayedRecord[] = [];
  try {
    await store.replay(recordingSink(out));
  } finally {
    await store.close();
  }
  return out;
}

function state(app: App): Record<string, JsonValue> {
  return Object.fromEntries(app.state.entries());
}
