import 'reflect-metadata';
import Database from 'better-sqlite3';
import {
  createApp,
  KeyValueState,
  On,
  Projection,
  type ProjectionState,
  type ReplayedRecord,
  recordingSink,
  silentLogger,
} from 'appendonly';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { recordingLogger, state, useDbFile } from './helpers';

const { Put, PutMany, Count, Counted, conformanceClasses } = fixtures;

/** Release 2's projections: each `Counted` counts tenfold. */
@Projection()
class TenfoldCounters {
  @On(Counted)
  counted(e: typeof Counted.Event, kv: ProjectionState) {
    kv.set(e.data.key, ((kv.get(e.data.key) as number | undefined) ?? 0) + 10 * e.data.by);
  }
}
const release2 = { handlers: conformanceClasses.handlers, projections: [TenfoldCounters] };

describe('SqliteWalStore: the projections version of the snapshot', () => {
  let file = '';
  useDbFile((f) => (file = f));

  const open = (projectionsVersion?: string, logger = silentLogger) =>
    createApp({ ...conformanceClasses, store: new SqliteWalStore({ file }), logger, projectionsVersion });

  /** The meta rows, read as plain sqlite3 would. */
  function meta(): Record<string, unknown> {
    const db = new Database(file, { readonly: true });
    try {
      const rows = db.prepare('SELECT key, value FROM meta ORDER BY key').all() as {
        key: string;
        value: unknown;
      }[];
      return Object.fromEntries(rows.map((r) => [r.key, r.value]));
    } finally {
      db.close();
    }
  }

  it('is a meta row, beside the snapshot_seq it was written with', async () => {
    // when
    const app = await open('7');
    await app.execute(new Count('n', 2));
    await app.execute(new Put('a', 1));
    await app.compact();
    await app.close();
    // then
    expect(meta()).toEqual({
      format: 'appendonly-sqlite-wal',
      snapshot_seq: 2,
      projections_version: '7',
      projections_version_seq: 2,
    });
    // and an unversioned compaction removes it
    const unversioned = await open();
    await unversioned.execute(new Put('b', 2));
    await unversioned.compact();
    await unversioned.close();
    expect(meta()).toEqual({ format: 'appendonly-sqlite-wal', snapshot_seq: 3 });
  });

  it('does not stand for a snapshot compacted by an appendonly that does not know it: that one loads as unversioned', async () => {
    // given: version 1's snapshot at seq 2, then a compaction at seq 3 by code that leaves the rows as they were
    const v1 = await open('1');
    await v1.execute(new Count('n', 2));
    await v1.execute(new Put('a', 1));
    await v1.compact();
    await v1.execute(new Count('n', 3));
    await v1.close();
    const older = await open();
    await older.compact();
    await older.close();
    const db = new Database(file);
    db.prepare(
      "INSERT INTO meta (key, value) VALUES ('projections_version', '1'), ('projections_version_seq', 2)",
    ).run();
    db.close();
    const logger = recordingLogger();
    // when: version 2 opens it
    const app = await open('2', logger);
    // then: not version 1's snapshot (it would be rebuilt or refused): an unversioned one, loaded as it is
    expect(state(app)).toEqual({ n: 5, a: 1 });
    expect(app.stats()).toMatchObject({ entriesReplayed: 2, groupsReplayed: 0 });
    expect(logger.lines).toContainEqual(expect.stringMatching(/up to seq 3 has no projections version/));
    await app.close();
  });

  describe('with keepHistory', () => {
    const openKeeping = (release: 1 | 2, logger = silentLogger) =>
      createApp({
        ...(release === 1 ? conformanceClasses : release2),
        store: new SqliteWalStore({ file, keepHistory: true }),
        logger,
        projectionsVersion: release,
      });

    /** Release 1 over two compactions: n = 1 + 2, a multi-event command, n += 4, n += 8 after. */
    async function release1Log(): Promise<void> {
      const app = await openKeeping(1);
      await app.execute(new Count('n', 1));
      await app.execute(new Count('n', 2));
      await app.compact();
      await app.execute(
        new PutMany([
          ['p', 1],
          ['q', 2],
        ]),
      );
      await app.execute(new Count('n', 4));
      await app.compact();
      await app.execute(new Count('n', 8));
      await app.close();
    }

    /** The store's own replay after `after`, as a tool would read it. */
    async function replayAfter(after: number): Promise<ReplayedRecord[]> {
      const store = new SqliteWalStore({ file });
      await store.open({
        snapshots: { takeSnapshot: () => new KeyValueState().takeSnapshot(0) },
        logger: silentLogger,
        clock: { now: Date.now },
      });
      const out: ReplayedRecord[] = [];
      try {
        await store.replay(recordingSink(out), { after });
      } finally {
        await store.close();
      }
      return out;
    }
    const seqs = (records: ReplayedRecord[]) => records.map((r) => (r.kind === 'group' ? r.seq : r.kind));

    it('another version rebuilds from the kept events, with a warning naming both', async () => {
      // given
      await release1Log();
      const logger = recordingLogger();
      // when
      const app = await openKeeping(2, logger);
      // then
      expect(state(app)).toEqual({ n: 150, p: 1, q: 2 });
      expect(app.stats()).toMatchObject({ entriesReplayed: 0, groupsReplayed: 5, lastSeq: 6 });
      expect(logger.lines).toContainEqual(
        expect.stringMatching(
          /up to seq 5 was built by projections version "1", and this app's projections are version "2"/,
        ),
      );
      await app.close();
    });

    it('replay({ after }) below the snapshot reads the events it covers from events_history, then the rest', async () => {
      // given
      await release1Log();
      // when
      const records = await replayAfter(1);
      // then
      expect(seqs(records)).toEqual([2, 3, 5, 6]);
      expect(records[1]).toMatchObject({ kind: 'group', seq: 3, events: [{ type: 'SET' }, { type: 'SET' }] });
    });

    it('reads a command whose rows a crash left half in events_history, half in events, whole', async () => {
      // given: the second compaction died while moving its covered rows, after seq 3 of 3..4 moved
      await release1Log();
      const db = new Database(file);
      db.exec(`INSERT INTO events SELECT * FROM events_history WHERE seq > 3;
               DELETE FROM events_history WHERE seq > 3;`);
      db.close();
      // when
      const records = await replayAfter(0);
      // then
      expect(seqs(records)).toEqual([1, 2, 3, 5, 6]);
      expect(records[2]).toMatchObject({ seq: 3, events: [{ data: { key: 'p' } }, { data: { key: 'q' } }] });
    });

    it('a history kept only from a later compaction on is LOG_COMPACTED, naming its first event', async () => {
      // given: the events of the first compaction were deleted, those of the second kept
      await release1Log();
      const db = new Database(file);
      db.exec('DELETE FROM events_history WHERE seq <= 2');
      db.close();
      // when
      const attempt = replayAfter(0);
      // then
      await expect(attempt).rejects.toMatchObject({ code: 'LOG_COMPACTED', after: 0, firstAvailable: 3 });
      expect(seqs(await replayAfter(2))).toEqual([3, 5, 6]);
      await expect(openKeeping(2)).rejects.toMatchObject({ code: 'PROJECTIONS_VERSION', firstAvailable: 3 });
    });
  });
});
