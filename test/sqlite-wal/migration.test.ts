import * as path from 'node:path';
import Database from 'better-sqlite3';
import { APPLICATION_ID, SCHEMA_VERSION, SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures, replayAll } from 'appendonly/testing';
import { openApp, state, tempDir } from './helpers';

/*
 * A database of schema 1 (before envelopes) opens with this code: the envelope columns are added
 * in one transaction, every old row keeps its values and reads back without envelope, and new
 * commands are logged with theirs.
 */
describe('SqliteWalStore: schema 1 → 2 (the envelope columns)', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  /** A database exactly as schema 1 made it, holding a SET and a two-event command. */
  function schema1(file: string, history: boolean): void {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) STRICT, WITHOUT ROWID;
      CREATE TABLE events (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, n INTEGER NOT NULL);
      CREATE TABLE snapshot (key TEXT NOT NULL, value TEXT NOT NULL);
      ${history ? 'CREATE TABLE events_history (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, n INTEGER NOT NULL);' : ''}
      INSERT INTO meta (key, value) VALUES ('format', 'appendonly-sqlite-wal'), ('snapshot_seq', 0);
      INSERT INTO events VALUES (1, 1700000000123, 'SET', '{"key":"a","value":1}', 1);
      INSERT INTO events VALUES (2, 1700000000456, 'SET', '{"key":"b","value":2}', 2);
      INSERT INTO events VALUES (3, 1700000000456, 'Counted', '{"key":"n","by":4}', 0);
      PRAGMA application_id = ${APPLICATION_ID};
      PRAGMA user_version = 1;
    `);
    db.close();
  }

  it.each([false, true])(
    'migrates at open (events_history: %s), keeps every row, logs new envelopes',
    async (history) => {
      // given a schema-1 database
      const file = path.join(dir, 'old.db');
      schema1(file, history);
      // when the store opens it and a command with metadata runs
      const { app } = await openApp({ file, appendfsync: 'always' });
      expect(state(app)).toEqual({ a: 1, b: 2, n: 4 });
      await app.execute(new fixtures.Put('c', 3), { metadata: { correlationId: 'r-1' } });
      await app.close();
      // then the file is schema 2, with the columns on both tables
      const db = new Database(file, { readonly: true });
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      const columns = (t: string) => (db.pragma(`table_info(${t})`) as { name: string }[]).map((c) => c.name);
      expect(columns('events')).toEqual(['seq', 'time', 'type', 'data', 'n', 'id', 'version', 'metadata']);
      if (history) expect(columns('events_history')).toEqual(columns('events'));
      db.close();
      // and the old rows read back without envelope, the new one with it
      const records = await replayAll(new SqliteWalStore({ file }));
      expect(records.slice(0, 2)).toEqual([
        {
          kind: 'group',
          seq: 1,
          time: 1_700_000_000_123,
          events: [{ type: 'SET', data: { key: 'a', value: 1 } }],
        },
        {
          kind: 'group',
          seq: 2,
          time: 1_700_000_000_456,
          events: [
            { type: 'SET', data: { key: 'b', value: 2 } },
            { type: 'Counted', data: { key: 'n', by: 4 } },
          ],
        },
      ]);
      expect(records[2]).toEqual(
        expect.objectContaining({ seq: 4, ids: [expect.any(String)], metadata: { correlationId: 'r-1' } }),
      );
    },
  );
});
