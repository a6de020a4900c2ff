import * as path from 'node:path';
import { type App, PersistenceError } from 'appendonly';
import type { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { openApp, recordingLogger, state, tempDir } from './helpers';

const { Put, PutMany } = fixtures;

describe.each(['always', 'everysec', 'no'] as const)('SqliteWalStore %s: SQLITE_FULL', (appendfsync) => {
  let cleanup: () => void;
  let file: string;
  let app: App;
  let store: SqliteWalStore;
  beforeEach(async () => {
    const t = tempDir();
    cleanup = t.cleanup;
    file = path.join(t.dir, 'app.db');
    ({ app, store } = await openApp({ file, appendfsync }, recordingLogger()));
  });
  afterEach(async () => {
    await app.close().catch(() => {});
    cleanup();
  });

  /** Caps the database a few pages above its size: writes fail with SQLITE_FULL until `lift()`. */
  function fillUp(): () => void {
    const db = store.database;
    const pages = Number(db.pragma('page_count', { simple: true }));
    db.pragma(`max_page_count = ${pages + 3}`);
    return () => db.pragma('max_page_count = 1073741823');
  }

  it('rejects every command that is not durable with PersistenceError SQLITE_FULL, loses nothing acknowledged, and takes writes again once the fault clears', async () => {
    // given
    await app.execute(new Put('before', 1));
    const lift = fillUp();
    // when: commands flow, 32 in flight, until the database is full
    const acked: string[] = [];
    const errors: unknown[] = [];
    for (let round = 0; round < 200 && errors.length === 0; round++) {
      await Promise.all(
        Array.from({ length: 32 }, (_, i) => {
          const key = `r${round}:${i}`;
          return app
            .execute(
              new PutMany([
                [key, 'x'.repeat(500)],
                [`${key}:b`, i],
              ]),
            )
            .then(
              () => acked.push(key),
              (err: unknown) => errors.push(err),
            );
        }),
      );
    }
    // then: the failure is a PersistenceError with SQLite's code, and new commands are refused with it
    expect(errors.length).toBeGreaterThan(0);
    for (const err of errors) {
      expect(err).toBeInstanceOf(PersistenceError);
      expect((err as PersistenceError).code).toBe('SQLITE_FULL');
    }
    await expect(app.execute(new Put('refused', 1))).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    expect(app.status).toBe('failed');
    expect(app.stats().store?.lastWriteStatus).toBe('err');
    // and: recovery is refused while the fault lasts
    await expect(store.recover()).rejects.toMatchObject({ name: 'PersistenceError', code: 'SQLITE_FULL' });
    // when: the fault clears
    lift();
    await app.recover();
    // then: the state is the log's: every acknowledged command, none of the rejected ones
    expect(app.status).toBe('ready');
    const live = state(app);
    for (const key of acked) expect(live[key]).toBe('x'.repeat(500));
    expect(Object.keys(live)).toHaveLength(1 + 2 * acked.length);
    // and: writes are taken again, with sequence numbers following the log
    const next = await app.execute(new Put('after', 2));
    expect(next.firstSeq).toBe(2 + 2 * acked.length);
    expect(app.stats().store?.lastWriteStatus).toBe('ok');
    await app.close();
    const reopened = await openApp({ file });
    expect(state(reopened.app)).toEqual(state(app));
    await reopened.app.close();
  });

  it('aborts a compaction that meets a full disk, and the log still loads to the live state', async () => {
    // given
    for (let i = 0; i < 200; i++) await app.execute(new Put(`k${i}`, 'v'.repeat(200)));
    const lift = fillUp();
    // when
    await expect(app.compact()).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    // then: commands are not affected by a failed compaction (as in Redis)
    expect(app.stats().store?.lastBgrewriteStatus).toBe('err');
    expect(app.stats().store?.rewritesConsecutiveFailures).toBe(1);
    lift();
    await app.execute(new Put('after', 1));
    const result = await app.compact();
    expect(result.keys).toBe(201);
    expect(app.stats().store?.lastBgrewriteStatus).toBe('ok');
    const live = state(app);
    await app.close();
    const reopened = await openApp({ file });
    expect(state(reopened.app)).toEqual(live);
    await reopened.app.close();
  });
  it('cancels a compaction scheduled behind a running one when a write fails, so no snapshot of a reloading state is taken', async () => {
    // given: a compaction running and another scheduled behind it
    await Promise.all(Array.from({ length: 3000 }, (_, i) => app.execute(new Put(`k${i}`, i))));
    const running = app.compact();
    await Promise.resolve(); // the first has started and taken its snapshot: the second is a follow-up
    const scheduled = app.compact();
    expect(store.stats().rewriteScheduled).toBe(true);
    // when: an append fails while they wait
    const lift = fillUp();
    const failed = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        app.execute(new Put(`big${i}`, 'x'.repeat(4000))).catch((e: unknown) => e),
      ),
    );
    expect(failed.some((e) => e instanceof PersistenceError)).toBe(true);
    // then: both compactions end without swapping anything in
    await expect(running).rejects.toThrow(PersistenceError);
    await expect(scheduled).rejects.toThrow(/cancelled: a write failed|aborted: a write failed/);
    lift();
    await app.recover();
    const live = state(app);
    await app.close();
    const reopened = await openApp({ file });
    expect(state(reopened.app)).toEqual(live);
    await reopened.app.close();
  });
});
