import * as path from 'node:path';
import { type App, createApp, type EventStore, StaleConsumerError, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { usePostgres } from '../support/postgres';
import { cli, tempDir } from './helpers';

const { Put, conformanceClasses } = fixtures;

/*
 * `convert` to and from a PostgreSQL log carries the consumers' records into the target's
 * consumer storage (the `<schema>.consumers` table, the AOF file, the SQLite table), same seqs.
 */

function app(store: EventStore): Promise<App> {
  return createApp({ ...conformanceClasses, store, logger: silentLogger });
}

/** Subscribes `name` (stored: resumes), returns the seqs it was handed up to caught up. */
async function resume(a: App, name: string): Promise<number[]> {
  const handled: number[] = [];
  const c = await a.subscribe(name, (e) => void handled.push(e.seq));
  await c.caughtUp();
  await c.close();
  return handled;
}

function listed(arg: string): [string, number, number[]][] {
  const r = cli(['consumers', arg, '--json']);
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout) as {
    consumers: { name: string; position: number; parked: { seq: number }[] }[];
  };
  return out.consumers.map((c) => [c.name, c.position, c.parked.map((p) => p.seq)]);
}

describe('convert carries consumers to and from PostgreSQL', () => {
  const server = usePostgres();
  let url = '';
  let dir: string;
  let cleanup: () => void;
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('aof → postgres → sqlite: positions and parked events arrive unchanged, consumers resume', async () => {
    // given: an AOF log of 5 events; "behind" at seq 2, "ender" at seq 5 with seq 4 parked
    const src = path.join(dir, 'src');
    const a = await app(new AofStore({ dir: src, appendfsync: 'always' }));
    for (let i = 1; i <= 2; i++) await a.execute(new Put(`k${i}`, i));
    await resume(a, 'behind');
    for (let i = 3; i <= 5; i++) await a.execute(new Put(`k${i}`, i));
    const ender = await a.subscribe(
      'ender',
      (e) => {
        if (e.seq === 4) throw new Error('down');
      },
      { maxAttempts: 1 },
    );
    await ender.caughtUp();
    await ender.close();
    await a.close();
    const want: [string, number, number[]][] = [
      ['behind', 2, []],
      ['ender', 5, [4]],
    ];
    // when: converted to PostgreSQL, then from there to SQLite
    const u = new URL(url);
    u.searchParams.set('log', 'carried');
    const pg = u.toString();
    const toPg = cli(['convert', src, pg, '--yes']);
    const db = path.join(dir, 'back.db');
    const toDb = cli(['convert', pg, db, '--yes']);
    // then: each step said what it carried, and each target holds the records
    expect(toPg.status).toBe(0);
    expect(toPg.stdout).toContain('consumer "ender": carried at position seq 5, 1 parked event');
    expect(toDb.status).toBe(0);
    expect(listed(pg)).toEqual(want);
    expect(listed(db)).toEqual(want);
    // then: on both targets "behind" resumes after seq 2 and "ender" has nothing to do
    for (const store of [
      new PostgresStore({ connectionString: url, log: 'carried', appendfsync: 'always' }),
      new SqliteWalStore({ file: db, appendfsync: 'always' }),
    ]) {
      const b = await app(store);
      try {
        expect(await resume(b, 'behind')).toEqual([3, 4, 5]);
        expect(await resume(b, 'ender')).toEqual([]);
      } finally {
        await b.close();
      }
    }
  });

  it('a consumer behind the snapshot, whose events the source kept below it, arrives marked stale', async () => {
    // given: a PostgreSQL log of 10 events compacted while "mailer" was at seq 0 (the rows stay
    // below the snapshot for it), and "caught" at seq 10
    const source = new URL(url);
    source.searchParams.set('log', 'kept');
    const s = await app(new PostgresStore({ connectionString: url, log: 'kept', appendfsync: 'always' }));
    await (await s.subscribe('mailer', () => {})).close();
    for (let i = 1; i <= 10; i++) await s.execute(new Put(`k${i}`, i));
    await resume(s, 'caught');
    await s.compact();
    await s.close();
    // when: converted to SQLite, whose copy starts at the snapshot
    const db = path.join(dir, 'kept.db');
    const r = cli(['convert', source.toString(), db, '--yes']);
    // then: "mailer" is marked stale in the target, and says so; "caught" is carried
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(
      'consumer "mailer": marked stale: the events after its position seq 0 up to the snapshot (seq 10) were kept for it in the source',
    );
    expect(r.stdout).toContain('consumer "caught": carried at position seq 10');
    const shown = cli(['consumers', db]);
    expect(shown.stdout).toMatch(
      /mailer {2}position 0 .* STALE \(a compaction at seq 10 found it 10 events behind/,
    );
    expect(shown.stdout).not.toMatch(/kept from seq/);
    // and on the target it is refused as stale, "caught" resumes with what follows
    const b = await app(new SqliteWalStore({ file: db, appendfsync: 'always' }));
    try {
      await expect(b.subscribe('mailer', () => {})).rejects.toThrow(
        /"mailer": is stale: a compaction at seq 10 found it 10 events behind/,
      );
      await expect(b.subscribe('mailer', () => {})).rejects.toBeInstanceOf(StaleConsumerError);
      await b.execute(new Put('k11', 11));
      expect(await resume(b, 'caught')).toEqual([11]);
    } finally {
      await b.close();
    }
  });
});
