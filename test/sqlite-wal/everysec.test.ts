import * as fs from 'node:fs';
import * as path from 'node:path';
import { fixtures } from 'appendonly/testing';
import { WalFile } from '../../adapters/sqlite-wal/wal-syncer';
import { openApp, tempDir } from './helpers';

const { Put } = fixtures;

/** Descriptors of this process open on `file`. */
function descriptorsOn(file: string): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === file;
    } catch {
      return false;
    }
  }).length;
}

describe('SqliteWalStore everysec: the background WAL fsync', () => {
  let cleanup: () => void;
  let file: string;
  beforeEach(() => {
    const t = tempDir();
    cleanup = t.cleanup;
    file = path.join(fs.realpathSync(t.dir), 'app.db');
  });
  afterEach(() => cleanup());

  it('fsyncs the WAL through a descriptor of its own about every second, and releases it on close', async () => {
    // given
    const { app, store } = await openApp({ file, appendfsync: 'everysec' });
    await app.execute(new Put('a', 1));
    const sqliteOnly = descriptorsOn(`${file}-wal`);
    // when: the once-a-second cron has run
    await new Promise((r) => setTimeout(r, 1300));
    // then: the syncer holds the WAL open (SQLite's descriptor plus its own), nothing is delayed
    expect(descriptorsOn(`${file}-wal`)).toBe(sqliteOnly + 1);
    expect(store.stats()).toMatchObject({ pendingBioFsync: 0, delayedFsync: 0, lastWriteStatus: 'ok' });
    await app.close();
    expect(descriptorsOn(`${file}-wal`)).toBe(0);
  });

  it('under always, no background fsync runs', async () => {
    const { app } = await openApp({ file, appendfsync: 'always' });
    await app.execute(new Put('a', 1));
    const sqliteOnly = descriptorsOn(`${file}-wal`);
    await new Promise((r) => setTimeout(r, 1300));
    expect(descriptorsOn(`${file}-wal`)).toBe(sqliteOnly);
    await app.close();
  });

  it('keeps one descriptor of the WAL across fsyncs, and waits for a running fsync on close', async () => {
    // given
    fs.writeFileSync(file, 'x');
    const wal = new WalFile(file);
    await wal.sync();
    // when
    const running = wal.sync();
    const closed = wal.close();
    // then
    expect(descriptorsOn(file)).toBe(1);
    await running;
    await closed;
    expect(descriptorsOn(file)).toBe(0);
  });

  it('does nothing before SQLite has made the WAL', async () => {
    const wal = new WalFile(path.join(path.dirname(file), 'missing-wal'));
    await expect(wal.sync()).resolves.toBeUndefined();
    await wal.close();
  });
});
