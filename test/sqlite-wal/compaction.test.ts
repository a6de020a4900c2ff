import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { fixtures } from 'appendonly/testing';
import { openApp, recordingLogger, state, useDbFile } from './helpers';

const { Put, Remove, Count } = fixtures;

describe('SqliteWalStore compaction', () => {
  let file: string;
  useDbFile((f) => (file = f));

  function rows(sql: string): unknown[] {
    const db = new Database(file, { readonly: true });
    try {
      return db.prepare(sql).raw().all();
    } finally {
      db.close();
    }
  }

  it('replaces the covered events by the snapshot, shrinks the file and truncates the WAL, while commands flow', async () => {
    // given: 20,000 commands over 5,000 keys
    const { app, store } = await openApp({ file, appendfsync: 'always' });
    for (let round = 0; round < 4; round++) {
      await Promise.all(
        Array.from({ length: 5000 }, (_, i) =>
          app.execute(new Put(`key:${i}`, { round, pad: 'p'.repeat(40) })),
        ),
      );
    }
    // when: a compaction runs while 64 writers keep sending commands (at most 50 each: on a slow
    // machine the compaction lasts longer, and unbounded writers would outgrow what it freed)
    let stop = false;
    let during = 0;
    const writers = Array.from({ length: 64 }, async (_, w) => {
      for (let n = 0; !stop && n < 50; n++) {
        await app.execute(new Count(`during:${w}`, 1));
        during++;
      }
    });
    const result = await app.compact();
    stop = true;
    await Promise.all(writers);
    // then: the result says what it did
    expect(result.seq).toBeGreaterThanOrEqual(20_000);
    expect(result.keys).toBeGreaterThanOrEqual(5000);
    expect(result.sizeAfter).toBeLessThan(result.sizeBefore);
    expect(during).toBeGreaterThan(0);
    const stats = store.stats();
    expect(stats).toMatchObject({
      rewrites: 1,
      lastBgrewriteStatus: 'ok',
      rewriteInProgress: false,
      snapshotSeq: result.seq,
    });
    // and: the WAL was truncated by the compaction (only commands after it are in it)
    expect(stats.walSize).toBeLessThan(result.sizeBefore / 4);
    const live = state(app);
    await app.close();
    // and: on disk, a snapshot of every key and only the events after it
    expect(rows('SELECT count(*) FROM snapshot')).toEqual([[result.keys]]);
    expect(rows(`SELECT count(*) FROM events WHERE seq <= ${result.seq}`)).toEqual([[0]]);
    expect(rows("SELECT name FROM sqlite_schema WHERE name LIKE 'snapshot_%'")).toEqual([]);
    // and: replay equals the live state
    const reopened = await openApp({ file });
    expect(state(reopened.app)).toEqual(live);
    expect(reopened.app.stats().lastSeq).toBe(20_000 + during);
    await reopened.app.close();
  });

  it('keeps the covered events in events_history with keepHistory', async () => {
    const { app } = await openApp({ file, keepHistory: true });
    for (let i = 0; i < 100; i++) await app.execute(new Put(`k${i % 10}`, i));
    await app.compact();
    await app.execute(new Remove(['k1']));
    const live = state(app);
    await app.close();
    expect(rows('SELECT count(*), min(seq), max(seq) FROM events_history')).toEqual([[100, 1, 100]]);
    const reopened = await openApp({ file, keepHistory: true });
    expect(state(reopened.app)).toEqual(live);
    await reopened.app.close();
  });

  it('a second compact() during one runs after it and covers what came since', async () => {
    const { app } = await openApp({ file });
    await Promise.all(Array.from({ length: 3000 }, (_, i) => app.execute(new Put(`k${i}`, i))));
    const first = app.compact();
    expect(app.stats().store?.rewriteInProgress).toBe(true);
    const late = await app.execute(new Put('late', true));
    const second = app.compact();
    expect(app.stats().store?.rewriteScheduled).toBe(true);
    const [a, b] = await Promise.all([first, second]);
    expect(b).not.toBe(a);
    expect(b.seq).toBeGreaterThanOrEqual(late.lastSeq);
    expect(app.stats().store?.rewrites).toBe(2);
    await app.close();
  });

  it('compacts automatically when db + WAL have grown by autoRewritePercentage past autoRewriteMinSize', async () => {
    // given
    const logger = recordingLogger();
    const { app } = await openApp(
      { file, autoRewritePercentage: 100, autoRewriteMinSize: 256 * 1024 },
      logger,
    );
    // when: the log grows well past twice its base and the minimum
    for (let i = 0; i < 40; i++) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => app.execute(new Put(`k${j}`, 'x'.repeat(100)))),
      );
    }
    // then: within about a second (the cron), a compaction ran
    for (let waited = 0; app.stats().store?.rewrites === 0 && waited < 5000; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(app.stats().store?.rewrites).toBeGreaterThanOrEqual(1);
    expect(logger.lines.some((l) => /starting automatic compaction/.test(l))).toBe(true);
    await app.close();
  });

  it('a compaction cut short before its swap leaves a file that loads to the same state', async () => {
    // given: a leftover staging table, as a crash in the middle of staging leaves it
    const { app } = await openApp({ file });
    for (let i = 0; i < 50; i++) await app.execute(new Put(`k${i}`, i));
    const live = state(app);
    await app.close();
    const db = new Database(file);
    db.exec(
      "CREATE TABLE snapshot_next (key TEXT NOT NULL, value TEXT NOT NULL); INSERT INTO snapshot_next VALUES ('k0', '999')",
    );
    db.close();
    // when / then
    const reopened = await openApp({ file });
    expect(state(reopened.app)).toEqual(live);
    await reopened.app.compact();
    await reopened.app.close();
    const again = await openApp({ file });
    expect(state(again.app)).toEqual(live);
    await again.app.close();
    expect(fs.existsSync(file)).toBe(true);
  });

  it('with noAppendfsyncOnRewrite, commits are not fsynced while a compaction runs (always drops to NORMAL), and are again after', async () => {
    const { app, store } = await openApp({ file, appendfsync: 'always', noAppendfsyncOnRewrite: true });
    await Promise.all(Array.from({ length: 5000 }, (_, i) => app.execute(new Put(`k${i}`, i))));
    const synchronous = () => store.database.pragma('synchronous', { simple: true });
    expect(synchronous()).toBe(2); // FULL
    const compaction = app.compact();
    await Promise.resolve(); // a compaction starts in a microtask
    expect(synchronous()).toBe(1); // NORMAL: written to the WAL, not fsynced
    await app.execute(new Put('during', true));
    await compaction;
    expect(synchronous()).toBe(2);
    const live = state(app);
    await app.close();
    const reopened = await openApp({ file });
    expect(state(reopened.app)).toEqual(live);
    await reopened.app.close();
  });
});
