import 'reflect-metadata';
import {
  ConfigError,
  createApp,
  type Logger,
  MemoryStore,
  On,
  Projection,
  type ProjectionState,
  ProjectionsVersionError,
  silentLogger,
} from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { HistoryStore } from './stores/history-store';

const { Count, Counted, Put, conformanceClasses } = fixtures;

/** Release 2's projections: the same events, each counting tenfold. */
@Projection()
class TenfoldCounters {
  @On(Counted)
  counted(e: typeof Counted.Event, kv: ProjectionState) {
    kv.set(e.data.key, ((kv.get(e.data.key) as number | undefined) ?? 0) + 10 * e.data.by);
  }
}

const release1 = conformanceClasses;
const release2 = { handlers: conformanceClasses.handlers, projections: [TenfoldCounters] };

function recording(lines: string[]): Logger {
  return { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

/** Release 1 writes `n = 5`, compacts, then adds 1. */
async function release1Log<S extends MemoryStore | HistoryStore>(store: S): Promise<S> {
  const app = await createApp({ ...release1, store, logger: silentLogger, projectionsVersion: 1 });
  await app.execute(new Count('n', 5));
  await app.execute(new Put('plain', true));
  await app.compact();
  await app.execute(new Count('n', 1));
  await app.close();
  return store;
}

describe('createApp({ projectionsVersion })', () => {
  it('takes a non-negative integer or a short text, and compares them as text', async () => {
    // given: a snapshot written by version 2, given as a number
    const store = await (async () => {
      const s = new HistoryStore();
      const app = await createApp({ ...release1, store: s, logger: silentLogger, projectionsVersion: 2 });
      await app.execute(new Count('n', 1));
      await app.compact();
      await app.close();
      return s;
    })();
    // when: version '2', as text
    const app = await createApp({ ...release1, store, logger: silentLogger, projectionsVersion: '2' });
    // then: the same version: the snapshot is loaded as it is
    expect(store.snapshot?.projectionsVersion).toBe('2');
    expect(app.stats()).toMatchObject({ entriesReplayed: 1, groupsReplayed: 0 });
    await app.close();
    for (const ok of [0, 'v1.2.3-rc.1+build:5@team/x', 'x'.repeat(64)]) {
      const opened = await createApp({
        store: new MemoryStore(),
        logger: silentLogger,
        projectionsVersion: ok,
      });
      await opened.close();
    }
  });

  it.each([
    ['a blank', 'release 2'],
    ['a quote', 'v"2'],
    ['an empty text', ''],
    ['a text of 65 characters', 'x'.repeat(65)],
    ['a negative number', -1],
    ['a fraction', 1.5],
    ['an object', { v: 1 }],
  ])('refuses %s with ConfigError, before the store is opened', async (_what, version) => {
    const store = new MemoryStore();
    const attempt = createApp({ store, logger: silentLogger, projectionsVersion: version as string });
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(
      /^projectionsVersion must be a non-negative integer or 1 to 64 letters/,
    );
    // the store was never opened: it opens now
    await (await createApp({ store, logger: silentLogger })).close();
  });

  it('on a store that keeps every event, another version rebuilds the state with its own projections, and says so', async () => {
    // given
    const store = await release1Log(new HistoryStore());
    const lines: string[] = [];
    // when
    const app = await createApp({ ...release2, store, logger: recording(lines), projectionsVersion: 2 });
    // then: release 2's counters over every event, nothing from release 1's snapshot
    expect(Object.fromEntries(app.state.entries())).toEqual({ n: 60, plain: true });
    expect(app.stats()).toMatchObject({ entriesReplayed: 0, groupsReplayed: 3, lastSeq: 3 });
    expect(lines).toEqual([
      'history-memory: the snapshot up to seq 2 was built by projections version "1", and this app\'s projections are version "2": ' +
        'not loading it; rebuilding the state from the events (the next compaction records a snapshot of version "2")',
    ]);
    // and the next compaction records version 2, which release 2 then loads as it is
    await app.execute(new Count('n', 1));
    await app.compact();
    await app.close();
    expect(store.snapshot).toMatchObject({ seq: 4, projectionsVersion: '2' });
    const again = await createApp({ ...release2, store, logger: silentLogger, projectionsVersion: 2 });
    expect(again.stats()).toMatchObject({ entriesReplayed: 2, groupsReplayed: 0 });
    expect(again.state.get('n')).toBe(70);
    await again.close();
  });

  it('on a store that dropped the events, another version refuses to start, naming both versions and the ways out', async () => {
    // given
    const store = await release1Log(new MemoryStore());
    // when
    const attempt = createApp({ ...release2, store, logger: silentLogger, projectionsVersion: 2 });
    // then
    await expect(attempt).rejects.toBeInstanceOf(ProjectionsVersionError);
    await expect(attempt).rejects.toMatchObject({
      code: 'PROJECTIONS_VERSION',
      appVersion: '2',
      snapshotVersion: '1',
      snapshotSeq: 2,
      firstAvailable: 3,
      message:
        'the MemoryStore: the snapshot (up to seq 2) was built by projections version "1", this app\'s projections are version "2", ' +
        'and the events before seq 3 were compacted away: the state cannot be rebuilt with these projections. ' +
        'Run the release whose projections are version "1", or restore the compacted events (a store with keepHistory: true keeps them), ' +
        'or, to keep the snapshot as it is, start once without projectionsVersion and compact (an unversioned snapshot loads under any version)',
    });
    // and the store was closed again, the log untouched: release 1 opens it as before
    const old = await createApp({ ...release1, store, logger: silentLogger, projectionsVersion: 1 });
    expect(Object.fromEntries(old.state.entries())).toEqual({ n: 6, plain: true });
    await old.close();
  });
});
