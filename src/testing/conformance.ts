/// <reference types="jest" />
import type { App } from '../app/app';
import { createApp } from '../app/create-app';
import type { JsonValue } from '../events/json';
import { AppClosedError, PersistenceError, StoreLockedError, UnknownCommandError } from '../store/errors';
import type { EventStore, ReplayRecord } from '../store/event-store';
import { KeyValueState } from '../state/key-value-state';
import { silentLogger } from '../store/logger';
import { runCompactionConformance } from './conformance-compaction';
import { Count, conformanceClasses, Explode, FlushAll, Put, PutMany, Remove } from './fixtures';

/** One location (folder, file, memory) for one conformance test. */
export interface StoreUnderTest {
  /** A new store instance on this location: called again to reopen it after close. */
  open(): EventStore;
  /** Removes what the test left. */
  cleanup?(): void | Promise<void>;
}

/**
 * The behaviour every store must show, as a jest suite: call it from a test file, once per
 * configuration (e.g. once per fsync policy). `factory` gives a fresh, empty location per test.
 *
 * ```ts
 * runStoreConformance('AofStore always', () => { const dir = tmp(); return { open: () => new AofStore({ dir, appendfsync: 'always' }) }; });
 * ```
 */
export function runStoreConformance(
  name: string,
  factory: () => StoreUnderTest | Promise<StoreUnderTest>,
): void {
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
      expect(app.state.size).toBe(0);
      expect(app.stats().lastSeq).toBe(0);
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
      expect(first.firstSeq).toBe(1);
      expect(last.lastSeq).toBe(4);
      expect(state(reopened)).toEqual({ n: 5 });
      expect((await reopened.execute(new Put('b', true))).firstSeq).toBe(5);
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
      expect(state(await reopen(app))).toEqual(values);
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
      expect([result.firstSeq, result.lastSeq]).toEqual([1, 3]);
      await app.close();
      const store = sut.open();
      const groups = (await replayAll(store)).filter((r) => r.kind === 'group');
      expect(groups).toHaveLength(1);
      expect(groups[0]).toMatchObject({
        seq: 1,
        events: [{ type: 'SET' }, { type: 'SET' }, { type: 'SET' }],
      });
    });

    it('a command whose projection throws is rolled back and never logged', async () => {
      // given
      const app = await open();
      await app.execute(new Put('k', 'before'));
      // when
      await expect(app.execute(new Explode('k'))).rejects.toThrow(/projection refused k/);
      // then: live state rolled back, later commands run, the log holds neither half of it
      expect(app.state.get('k')).toBe('before');
      const next = await app.execute(new Put('other', 1));
      expect(next.firstSeq).toBe(2);
      expect(state(await reopen(app))).toEqual({ k: 'before', other: 1 });
    });

    it('applies and logs 64 commands in flight in dispatch order', async () => {
      const app = await open();
      const results = await Promise.all(Array.from({ length: 64 }, (_, i) => app.execute(new Count('c', i))));
      expect(results.map((r) => r.firstSeq)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
      await Promise.all(Array.from({ length: 64 }, (_, i) => app.execute(new Put('last', i))));
      const live = state(app);
      const replayed = state(await reopen(app));
      expect(replayed).toEqual(live);
      expect(replayed).toEqual({ c: (63 * 64) / 2, last: 63 });
    });

    it('logs FLUSHALL and replays it (the classic AOF trap)', async () => {
      const app = await open();
      await app.execute(new Put('a', 1));
      await app.execute(new FlushAll());
      await app.execute(new Put('b', 2));
      expect(state(await reopen(app))).toEqual({ b: 2 });
    });

    it('compaction keeps the state and the sequence numbers', async () => {
      // given
      const app = await open();
      for (let i = 0; i < 50; i++) await app.execute(new Put(`k${i % 10}`, i));
      await app.execute(new Remove(['k0']));
      // when
      const result = await app.compact();
      await app.execute(new Count('after', 1));
      // then
      expect(result.seq).toBe(51);
      expect(result.keys).toBe(9);
      expect(app.stats().rewrites).toBeGreaterThanOrEqual(1);
      const live = state(app);
      const reopened = await reopen(app);
      expect(state(reopened)).toEqual(live);
      expect((await reopened.execute(new Put('z', 0))).firstSeq).toBe(53);
    });

    it('takes commands while it compacts, and loses none of them', async () => {
      const app = await open();
      await Promise.all(Array.from({ length: 2000 }, (_, i) => app.execute(new Put(`key:${i}`, { i }))));
      const during: Promise<unknown>[] = [];
      const compaction = app.compact();
      for (let i = 0; i < 500; i++) during.push(app.execute(new Count('during', 1)));
      for (let i = 0; i < 100; i++) during.push(app.execute(new Remove([`key:${i}`])));
      await Promise.all([compaction, ...during]);
      const live = state(app);
      expect(live.during).toBe(500);
      expect(Object.keys(live)).toHaveLength(1901);
      expect(state(await reopen(app))).toEqual(live);
    });

    it('compacts again after more commands, and after a FLUSHALL', async () => {
      const app = await open();
      await app.execute(new Put('a', 1));
      await app.compact();
      await app.execute(new Put('b', 2));
      await app.compact();
      await app.execute(new FlushAll());
      await app.execute(new Put('c', 3));
      await app.compact();
      await app.execute(new Put('d', 4));
      expect(state(await reopen(app))).toEqual({ c: 3, d: 4 });
    });

    it('close() flushes every command already dispatched', async () => {
      const app = await open();
      const pending = Array.from({ length: 300 }, (_, i) => app.execute(new Put(`p${i}`, i)));
      await app.close();
      await Promise.all(pending);
      expect(Object.keys(state(await open()))).toHaveLength(300);
    });

    it('reopens after close, again and again', async () => {
      let app = await open();
      for (let round = 0; round < 5; round++) {
        await app.execute(new Count('rounds', 1));
        if (round === 2) await app.compact();
        app = await reopen(app);
      }
      expect(state(app)).toEqual({ rounds: 5 });
    });

    it('refuses commands after close with AppClosedError, and unknown commands by name', async () => {
      const app = await open();
      class NotRegistered {}
      await expect(app.execute(new NotRegistered())).rejects.toThrow(UnknownCommandError);
      await expect(app.execute(new NotRegistered())).rejects.toThrow(/NotRegistered/);
      await app.close();
      await expect(app.execute(new Put('a', 1))).rejects.toThrow(AppClosedError);
      await expect(app.compact()).rejects.toThrow(AppClosedError);
    });

    it('allows one writer: a second open of the same location fails while the first is open', async () => {
      const app = await open();
      await app.execute(new Put('a', 1));
      await expect(open()).rejects.toThrow(StoreLockedError);
      await app.execute(new Put('b', 2));
      expect(state(await reopen(app))).toEqual({ a: 1, b: 2 });
    });

    it('reports persistence fields with Redis names', async () => {
      const app = await open();
      await app.execute(new Put('a', 1));
      const stats = app.stats();
      expect(['always', 'everysec', 'no']).toContain(stats.appendfsync);
      expect(stats.lastWriteStatus).toBe('ok');
      expect(stats.lastBgrewriteStatus).toBe('ok');
      expect(stats.rewriteInProgress).toBe(false);
      expect(typeof stats.currentSize).toBe('number');
      expect(stats.lastSeq).toBe(1);
      expect(stats.keys).toBe(1);
    });

    runCompactionConformance({ it, newStore: () => sut.open(), open, reopen });

    it('types its write errors as PersistenceError', () => {
      expect(
        PersistenceError.from('write', Object.assign(new Error('no space'), { code: 'ENOSPC' })).code,
      ).toBe('ENOSPC');
    });
  });
}

/** Reads a store's whole replay (for small test logs only). */
export async function replayAll(store: EventStore): Promise<ReplayRecord[]> {
  const kv = new KeyValueState();
  await store.open({
    snapshots: { takeSnapshot: () => kv.takeSnapshot(0) },
    logger: silentLogger,
    clock: { now: Date.now },
  });
  const out: ReplayRecord[] = [];
  try {
    for await (const batch of store.replay()) out.push(...batch);
  } finally {
    await store.close();
  }
  return out;
}

function state(app: App): Record<string, JsonValue> {
  return Object.fromEntries(app.state.entries());
}
