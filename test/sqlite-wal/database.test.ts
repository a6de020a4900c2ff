import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { createApp, silentLogger } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { APPLICATION_ID, IncompatibleDatabaseError, SCHEMA_VERSION } from 'appendonly/adapters/sqlite-wal';
import { assertWal } from '../../adapters/sqlite-wal/database';
import { openApp, state, tempDir, useDbFile } from './helpers';

const { Put } = fixtures;

describe('SqliteWalStore database file', () => {
  let dir: string;
  let cleanup: () => void;
  let file: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    file = path.join(dir, 'app.db');
  });
  afterEach(() => cleanup());

  it('creates the file with mode 0600, in WAL mode, with its schema version and application id', async () => {
    // given
    const { app } = await openApp({ file, appendfsync: 'always' });
    await app.execute(new Put('a', 1));
    // then: while open, the WAL exists, with the same mode; no -shm file (exclusive locking mode)
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(`${file}-wal`).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(`${file}-shm`)).toBe(false);
    await app.close();
    // and: the header says WAL (bytes 18-19 are 2) and the pragmas are ours
    const header = fs.readFileSync(file).subarray(0, 100);
    expect([header[18], header[19]]).toEqual([2, 2]);
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('application_id', { simple: true })).toBe(APPLICATION_ID);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare('SELECT seq, type, data, n FROM events').all()).toEqual([
      { seq: 1, type: 'SET', data: '{"key":"a","value":1}', n: 1 },
    ]);
    db.close();
  });

  it('refuses a foreign SQLite database and leaves it untouched', async () => {
    // given
    const db = new Database(file);
    db.exec(
      "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada')",
    );
    db.close();
    const before = fs.readFileSync(file);
    // when / then
    const opening = openApp({ file });
    await expect(opening).rejects.toThrow(IncompatibleDatabaseError);
    await expect(openApp({ file })).rejects.toThrow(
      /is not an appendonly store .*tables: customers.*refusing to touch it/,
    );
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });

  it('refuses a database written by a newer schema version, naming both versions', async () => {
    // given
    const { app } = await openApp({ file });
    await app.execute(new Put('a', 1));
    await app.close();
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    // when / then
    await expect(openApp({ file })).rejects.toThrow(
      new RegExp(
        `newer appendonly \\(schema version ${SCHEMA_VERSION + 1}; this version reads up to ${SCHEMA_VERSION}\\)`,
      ),
    );
    // and: nothing was rewritten
    const again = new Database(file, { readonly: true });
    expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    again.close();
  });

  it('refuses a file that is not an SQLite database', async () => {
    fs.writeFileSync(file, 'this is not a database, it is a shopping list\n'.repeat(100));
    await expect(openApp({ file })).rejects.toThrow(/is not an SQLite database/);
  });

  it('refuses clearly when SQLite does not answer wal to journal_mode=WAL', () => {
    expect(() => assertWal(file, 'delete')).toThrow(IncompatibleDatabaseError);
    expect(() => assertWal(file, 'memory')).toThrow(
      /cannot be put in WAL mode \(SQLite kept journal_mode=memory\)/,
    );
    expect(() => assertWal(file, 'wal')).not.toThrow();
  });

  it('rejects unknown and bad options when constructed', async () => {
    await expect(openApp({ file, appendfsync: 'sometimes' as 'always' })).rejects.toThrow(
      /appendfsync must be one of/,
    );
    await expect(openApp({ file, autoRewritePercentage: -1 })).rejects.toThrow(/autoRewritePercentage/);
    await expect(openApp({ file, dir: 'x' } as unknown as { file: string })).rejects.toThrow(
      /unknown option "dir"/,
    );
  });

  it('creates missing parent folders (mode 0700)', async () => {
    const nested = path.join(dir, 'data', 'prod', 'app.db');
    const { app } = await openApp({ file: nested });
    await app.execute(new Put('a', 1));
    await app.close();
    expect(fs.statSync(path.join(dir, 'data')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(nested).mode & 0o777).toBe(0o600);
  });

  it('reopens a database that is already in WAL mode, with its state', async () => {
    const first = await openApp({ file, appendfsync: 'no' });
    await first.app.execute(new Put('k', { deep: [1, 2] }));
    await first.app.close();
    const second = await openApp({ file, appendfsync: 'always' });
    expect(state(second.app)).toEqual({ k: { deep: [1, 2] } });
    await second.app.close();
  });
});

describe('SqliteWalStore stats and lifecycle', () => {
  let file: string;
  useDbFile((f) => (file = f));

  it('reports the persistence fields: sizes of db and WAL, bytes waiting for their commit, last seq', async () => {
    // given
    const { app, store } = await openApp({ file, appendfsync: 'everysec' });
    const opened = store.stats();
    expect(opened).toMatchObject({
      kind: 'sqlite-wal',
      appendfsync: 'everysec',
      rewrites: 0,
      lastRewriteTimeSec: -1,
    });
    expect(opened.baseSize).toBe(opened.currentSize);
    // when: a command is applied but its transaction has not committed yet
    const pending = app.execute(new Put('k', 'v'.repeat(1000)));
    expect(store.stats().bufferLength).toBeGreaterThan(1000);
    await pending;
    // then
    const stats = store.stats();
    expect(stats.bufferLength).toBe(0);
    expect(app.stats().durableSeq).toBe(1);
    expect(stats.walSize).toBeGreaterThan(0);
    expect(stats.currentSize).toBe(stats.databaseSize + stats.walSize);
    expect(stats.currentSize).toBe(fs.statSync(file).size + fs.statSync(`${file}-wal`).size);
    await app.close();
    // and: close checkpoints and removes the WAL
    expect(fs.existsSync(`${file}-wal`)).toBe(false);
  });

  it('can be opened again after close, and not twice at once', async () => {
    const { app, store } = await openApp({ file });
    await app.execute(new Put('a', 1));
    await expect(
      store.open({
        snapshots: {
          takeSnapshot: () => {
            throw new Error('unused');
          },
        },
        logger: silentLogger,
        clock: { now: Date.now },
      }),
    ).rejects.toThrow(/already open/);
    await app.close();
    const again = await createApp({ ...fixtures.conformanceClasses, store, logger: silentLogger });
    expect(state(again)).toEqual({ a: 1 });
    await again.close();
  });
});
