import * as path from 'node:path';
import { type App, type AppliedEvent, createApp, type EventStore, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { tempDir } from '../support/helpers';
import { cli } from './helpers';

const { Put, Count, conformanceClasses } = fixtures;

/** Reacts to each Counted with one Put: one group of one SET, in a MULTI with its @pos. */
const react = (e: AppliedEvent) => (e.type === 'Counted' ? new Put(`seen:${e.seq}`, e.seq) : undefined);

function listed(arg: string): { lastSeq: number; consumers: [string, number][] } {
  const r = cli(['consumers', arg, '--json']);
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout) as { lastSeq: number; consumers: { name: string; position: number }[] };
  return { lastSeq: out.lastSeq, consumers: out.consumers.map((c) => [c.name, c.position]) };
}

/** The keys of the reactions' SETs in the log, in order (as a consumer reading it sees them). */
async function reactionsIn(app: App): Promise<string[]> {
  const store = (app as unknown as { store: EventStore }).store;
  const groups = await store.read!(0, 10_000);
  return groups.flatMap((g) =>
    g.events.flatMap((e) => {
      const key = (e.data as { key?: string }).key;
      return key?.startsWith('seen:') ? [key] : [];
    }),
  );
}

describe('the tools carry the positions an AOF log holds in its reactions (@pos)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dir: string;
  const open = (): Promise<App> =>
    createApp({
      ...conformanceClasses,
      store: new AofStore({ dir, appendfsync: 'always' }),
      logger: silentLogger,
    });

  beforeEach(async () => {
    tmp = tempDir('cli-reactions');
    dir = tmp.dir;
    // given: Counted at seq 1 and its reaction at 2, Counted at 3 and its reaction at 4; the
    // consumer never stored its position itself (its file says 0): the log's @pos say 3
    const app = await open();
    await app.execute(new Count('n', 1));
    const sub = await app.subscribe('reactor', react, { from: 'start' });
    Object.assign((app as unknown as { store: EventStore }).store, {
      saveConsumer: () => Promise.reject(new Error('the process is gone')),
    });
    await sub.caughtUp();
    await app.execute(new Count('n', 1));
    await sub.caughtUp();
    await app.close();
  });
  afterEach(() => tmp.cleanup());

  it('consumers lists the position the log holds', () => {
    expect(listed(dir)).toEqual({ lastSeq: 4, consumers: [['reactor', 3]] });
  });

  it('truncate clamps it; the reaction left in the log counts no more, and none is decided twice', async () => {
    // when: the log is cut after seq 2 (the second Counted and its reaction go)
    const r = cli(['truncate', dir, '--to-seq', '2', '--yes']);
    // then: the position moved back to the end, and stays there when the app opens
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('consumer "reactor": position moved from seq 3 to seq 2');
    expect(listed(dir)).toEqual({ lastSeq: 2, consumers: [['reactor', 2]] });
    const app = await open();
    try {
      const sub = await app.subscribe('reactor', react);
      await app.execute(new Count('n', 1));
      await sub.caughtUp();
      // and: the reaction to seq 1 is there once; the new Counted (seq 3 again) has its own
      expect(await reactionsIn(app)).toEqual(['seen:1', 'seen:3']);
    } finally {
      await app.close();
    }
  });

  it('strip moves it down with the events, and the @pos records left behind count no more', async () => {
    // when: the second Counted (seq 3) is stripped: its reaction moves from seq 4 to seq 3
    const r = cli(['strip', dir, '--type', 'Counted', '--last', '--yes']);
    // then: the position moved down past what the consumer had handled, and stays there
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('consumer "reactor": position moved from seq 3 to seq 2');
    expect(listed(dir)).toEqual({ lastSeq: 3, consumers: [['reactor', 2]] });
    const app = await open();
    try {
      const sub = await app.subscribe('reactor', react);
      await sub.caughtUp();
      // and: the stripped event's reaction is still in the log (strip removes one type), once
      expect(await reactionsIn(app)).toEqual(['seen:1', 'seen:3']);
      expect(sub.stats().position).toBe(3);
    } finally {
      await app.close();
    }
  });

  it('convert carries it into the other store kind', async () => {
    // when
    const to = path.join(tmp.dir, 'copy.db');
    const r = cli(['convert', dir, to, '--yes']);
    // then
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('consumer "reactor": carried at position seq 3');
    const app = await createApp({
      ...conformanceClasses,
      store: new SqliteWalStore({ file: to, appendfsync: 'always' }),
      logger: silentLogger,
    });
    try {
      const sub = await app.subscribe('reactor', react);
      await sub.caughtUp();
      expect(await reactionsIn(app)).toEqual(['seen:1', 'seen:3']);
    } finally {
      await app.close();
    }
  });
});
