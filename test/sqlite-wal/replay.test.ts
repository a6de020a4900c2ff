import Database from 'better-sqlite3';
import {
  CorruptLogError,
  defineEvent,
  type EventGroup,
  type ReplayedRecord,
  recordingSink,
  silentLogger,
} from 'appendonly';
import { replayDatabase } from '../../adapters/sqlite-wal/replay';
import type { ReplayRecord } from '../../src/store/replay-batch';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures, replayAll } from 'appendonly/testing';
import { openApp, recordingLogger, state, useDbFile } from './helpers';

/** The user event these tests log; defined, so that an app replaying them knows the type. */
defineEvent('Noted');

const { PutMany } = fixtures;

const noSnapshots = {
  takeSnapshot: () => {
    throw new Error('no compaction in this test');
  },
};

describe('SqliteWalStore replay', () => {
  let file: string;
  useDbFile((f) => (file = f));

  /** Appends groups of 1 to 5 events (seq 1…) straight to a store, 30,000 events in all. */
  async function writeGroups(): Promise<EventGroup[]> {
    const store = new SqliteWalStore({ file, appendfsync: 'no' });
    await store.open({ snapshots: noSnapshots, logger: silentLogger, clock: { now: Date.now } });
    const groups: EventGroup[] = [];
    let seq = 1;
    for (let g = 0; seq <= 30_000; g++) {
      const size = 1 + (g % 5);
      const events = Array.from({ length: size }, (_, i) => ({
        type: 'Noted',
        data: { g, i, text: `n${seq + i}` },
      }));
      groups.push({ seq, time: 1_700_000_000_000 + g, events });
      seq += size;
    }
    await Promise.all(groups.map((g) => store.append(g)));
    await store.close();
    return groups;
  }

  it('streams every group whole and in order, in bounded batches, across batch boundaries', async () => {
    // given
    const groups = await writeGroups();
    // when
    const store = new SqliteWalStore({ file });
    await store.open({ snapshots: noSnapshots, logger: silentLogger, clock: { now: Date.now } });
    const replayed: ReplayedRecord[] = [];
    await store.replay(recordingSink(replayed));
    const progress = store.replayProgress();
    const batches: (readonly ReplayRecord[])[] = [];
    for await (const batch of replayDatabase(store.database, file, silentLogger, { rowsRead: 0 }))
      batches.push(batch);
    await store.close();
    // then
    expect(replayed).toEqual(groups.map((g) => ({ kind: 'group', ...g })));
    expect(batches.length).toBeGreaterThan(3);
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(2048);
    const rows = groups.reduce((n, g) => n + g.events.length, 0);
    expect(progress).toEqual({ done: rows, total: expect.any(Number), unit: 'records' });
    expect(progress.total).toBeGreaterThanOrEqual(rows);
  });

  it('stops with CorruptLogError naming the file and the sequence number when the events table has a gap', async () => {
    await writeGroups();
    const db = new Database(file);
    db.exec('DELETE FROM events WHERE seq BETWEEN 10000 AND 10100');
    db.close();
    const replay = replayAll(new SqliteWalStore({ file }));
    await expect(replay).rejects.toThrow(CorruptLogError);
    await expect(replayAll(new SqliteWalStore({ file }))).rejects.toThrow(
      /app\.db: .*expected event seq 1\d{4} \(the events table jumps to seq 10101\)/,
    );
  });

  it('stops with CorruptLogError on data that is not JSON', async () => {
    await writeGroups();
    const db = new Database(file);
    db.exec("UPDATE events SET data = '{not json' WHERE seq = 77");
    db.close();
    await expect(replayAll(new SqliteWalStore({ file }))).rejects.toThrow(
      /expected JSON data in event seq 77/,
    );
  });

  it('refuses to start an app on a corrupt log: createApp rejects and releases the file', async () => {
    await writeGroups();
    const db = new Database(file);
    db.exec('UPDATE events SET n = 0 WHERE seq = 1');
    db.close();
    await expect(openApp({ file })).rejects.toThrow(/expected the first event of a command at seq 1/);
    // released: a tool can open it to repair it
    const fix = new Database(file);
    fix.exec('UPDATE events SET n = 1 WHERE seq = 1');
    fix.close();
    const { app } = await openApp({ file });
    expect(app.stats().lastSeq).toBeGreaterThanOrEqual(30_000);
    await app.close();
  });

  it('cuts a command torn at the end of the table with a warning, and appends after it', async () => {
    // given: a three-event command that lost its last row (as a hand edit or a tool might leave it)
    const first = await openApp({ file });
    await first.app.execute(new PutMany([['a', 1]]));
    await first.app.execute(
      new PutMany([
        ['x', 1],
        ['y', 2],
        ['z', 3],
      ]),
    );
    await first.app.close();
    const db = new Database(file);
    db.exec('DELETE FROM events WHERE seq = 4');
    db.close();
    // when
    const logger = recordingLogger();
    const { app } = await openApp({ file }, logger);
    // then: none of the command is applied, the warning names it, the next command takes its numbers
    expect(state(app)).toEqual({ a: 1 });
    expect(logger.lines).toEqual([
      expect.stringMatching(
        /warn: .*app\.db: the log ended inside the command at seq 2 \(2 of its 3 events\)/,
      ),
    ]);
    expect((await app.execute(new PutMany([['b', 2]]))).firstSeq).toBe(2);
    await app.close();
  });
});
