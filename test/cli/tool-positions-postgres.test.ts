import * as path from 'node:path';
import { type App, createApp, type EventStore, silentLogger } from 'appendonly';
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
});
