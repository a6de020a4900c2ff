import Database from 'better-sqlite3';
import { createApp, silentLogger } from 'appendonly';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { recordingLogger, state, useDbFile } from './helpers';

const { Put, Count, conformanceClasses } = fixtures;

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
});
