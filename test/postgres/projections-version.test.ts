import 'reflect-metadata';
import {
  type App,
  createApp,
  type EventStore,
  KeyValueState,
  type Logger,
  On,
  Projection,
  type ProjectionState,
  ProjectionsVersionError,
  type ReplayedRecord,
  recordingSink,
  silentLogger,
} from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import { admin, usePostgres } from '../support/postgres';
import { stateOf } from './helpers';

const { Count, Counted, conformanceClasses } = fixtures;

/** Release 2's projections: the same `Counted` events, each counting tenfold. */
@Projection()
class TenfoldCounters {
  @On(Counted)
  counted(e: typeof Counted.Event, kv: ProjectionState) {
    kv.set(e.data.key, ((kv.get(e.data.key) as number | undefined) ?? 0) + 10 * e.data.by);
  }
}

const releases = {
  1: conformanceClasses,
  2: { handlers: conformanceClasses.handlers, projections: [TenfoldCounters] },
} as const;

/** A logger that keeps every line. */
function recording(lines: string[]): Logger {
  return { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

/** `store` without its `watch` capability: an instance that learns of the others' commands only by `sync()`. */
function unwatched(store: EventStore): EventStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'watch') return undefined;
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * Two releases on one PostgreSQL log, as during a rolling deploy: release 1 counts each `Counted`
 * once, release 2 tenfold (a changed projection, so `projectionsVersion` 2).
 */
describe('PostgresStore: projections versions on one shared log (a rolling deploy)', () => {
  const server = usePostgres();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  const apps: App[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close().catch(() => {});
  });

  interface Release {
    readonly release: 1 | 2;
    readonly log: string;
    readonly keepHistory?: boolean;
    readonly watch?: boolean;
    readonly lines?: string[];
  }
  const open = async ({ release, log, keepHistory = false, watch = true, lines }: Release): Promise<App> => {
    const store = new PostgresStore({ connectionString: url, log, appendfsync: 'always', keepHistory });
    const app = await createApp({
      ...releases[release],
      store: watch ? store : unwatched(store),
      logger: lines === undefined ? silentLogger : recording(lines),
      projectionsVersion: release,
    });
    apps.push(app);
    return app;
  };

  /** The log's records, as a tool reads them. */
  const records = async (log: string): Promise<ReplayedRecord[]> => {
    const store = new PostgresStore({ connectionString: url, log });
    await store.open({
      snapshots: { takeSnapshot: () => new KeyValueState().takeSnapshot(0) },
      logger: silentLogger,
      clock: { now: Date.now },
    });
    const out: ReplayedRecord[] = [];
    try {
      await store.replay(recordingSink(out));
    } finally {
      await store.close();
    }
    return out;
  };

  it('a compaction records its version in a meta row naming the snapshot id; an unversioned one leaves it standing for nothing', async () => {
    // given
    const log = 'meta-row';
    const app = await open({ release: 1, log });
    await app.execute(new Count('n', 1));
    // when
    await app.compact();
    // then
    const row = () =>
      admin(url, 'SELECT value FROM appendonly.meta WHERE key = $1', [`projections_version:${log}`]);
    expect((await row()).rows).toEqual([{ value: '{"snapshot_id":1,"projections_version":"1"}' }]);
    expect((await records(log))[0]).toEqual({ kind: 'snapshot', seq: 1, projectionsVersion: '1' });
    // and an app without projectionsVersion compacts to snapshot 2: the row names snapshot 1 still
    const unversioned = await createApp({
      ...releases[1],
      store: new PostgresStore({ connectionString: url, log }),
      logger: silentLogger,
    });
    apps.push(unversioned);
    await unversioned.execute(new Count('n', 1));
    await unversioned.compact();
    expect((await row()).rows).toEqual([{ value: '{"snapshot_id":1,"projections_version":"1"}' }]);
    expect((await records(log))[0]).toEqual({ kind: 'snapshot', seq: 2 });
  });

  it('with keepHistory, release 2 starts beside release 1 by rebuilding from the events; each follows the other, and loads only its own snapshot', async () => {
    // given: release 1 running, its snapshot of version 1 in the log
    const log = 'rolling-history';
    const one = await open({ release: 1, log, keepHistory: true });
    for (let i = 1; i <= 4; i++) await one.execute(new Count('n', i));
    await one.compact();
    await one.execute(new Count('n', 5));
    // when: release 2 starts on the same log
    const lines: string[] = [];
    const two = await open({ release: 2, log, keepHistory: true, lines });
    // then: release 2's state is its own projections over every event, not release 1's snapshot
    expect(stateOf(two)).toEqual({ n: 150 });
    expect(two.stats()).toMatchObject({ entriesReplayed: 0, groupsReplayed: 5 });
    expect(lines).toContainEqual(
      expect.stringMatching(
        /the snapshot up to seq 4 was built by projections version "1", and this app's projections are version "2": not loading it; rebuilding the state from the events/,
      ),
    );
    // and both write on, each applying the other's commands with its own projections
    await one.execute(new Count('n', 100));
    await two.execute(new Count('n', 1000));
    await one.sync();
    await two.sync();
    expect(stateOf(one)).toEqual({ n: 1115 });
    expect(stateOf(two)).toEqual({ n: 11150 });
    // when release 2 compacts, a new release 2 loads that snapshot as it is, a new release 1 rebuilds
    await two.compact();
    expect((await records(log))[0]).toEqual({ kind: 'snapshot', seq: 7, projectionsVersion: '2' });
    const twoAgain = await open({ release: 2, log, keepHistory: true });
    expect(stateOf(twoAgain)).toEqual({ n: 11150 });
    expect(twoAgain.stats().entriesReplayed).toBe(1);
    const oneLines: string[] = [];
    const oneAgain = await open({ release: 1, log, keepHistory: true, lines: oneLines });
    expect(stateOf(oneAgain)).toEqual({ n: 1115 });
    expect(oneAgain.stats()).toMatchObject({ entriesReplayed: 0, groupsReplayed: 7 });
    expect(oneLines).toContainEqual(
      expect.stringMatching(/projections version "2", and this app's projections are version "1"/),
    );
  });

  it('without keepHistory, release 2 refuses to start over release 1’s snapshot, naming both versions; release 1 goes on', async () => {
    // given
    const log = 'rolling-compacted';
    const one = await open({ release: 1, log });
    for (let i = 1; i <= 3; i++) await one.execute(new Count('n', i));
    await one.compact();
    await one.execute(new Count('n', 4));
    // when
    const attempt = open({ release: 2, log });
    // then
    await expect(attempt).rejects.toBeInstanceOf(ProjectionsVersionError);
    await expect(attempt).rejects.toMatchObject({
      code: 'PROJECTIONS_VERSION',
      appVersion: '2',
      snapshotVersion: '1',
      snapshotSeq: 3,
      firstAvailable: 4,
      message: expect.stringMatching(
        / appendonly\.rolling-compacted: the snapshot \(up to seq 3\) was built by projections version "1", this app's projections are version "2", and the events before seq 4 were compacted away/,
      ),
    });
    await one.execute(new Count('n', 5));
    expect(stateOf(one)).toEqual({ n: 15 });
    expect(stateOf(await open({ release: 1, log }))).toEqual({ n: 15 });
  });

  it('a release 2 follower left behind release 1’s compaction stops taking commands, naming both versions, its state whole', async () => {
    // given: both releases on a log without a snapshot; release 2 follows by sync() only
    const log = 'rolling-follower';
    const one = await open({ release: 1, log });
    const lines: string[] = [];
    const two = await open({ release: 2, log, watch: false, lines });
    await one.execute(new Count('n', 1));
    await two.sync();
    expect(stateOf(two)).toEqual({ n: 10 });
    // when: release 1 writes on and compacts the events release 2 has not read yet away
    await one.execute(new Count('n', 2));
    await one.compact();
    await one.execute(new Count('n', 3));
    const caughtUp = two.sync();
    // then: the catch-up is refused with both versions named, and the app fails, refusing commands
    await expect(caughtUp).rejects.toBeInstanceOf(ProjectionsVersionError);
    await expect(caughtUp).rejects.toMatchObject({ appVersion: '2', snapshotVersion: '1', snapshotSeq: 2 });
    expect(two.status).toBe('failed');
    const refused = two.execute(new Count('n', 1));
    await expect(refused).rejects.toMatchObject({
      code: 'PROJECTIONS_VERSION',
      message: expect.stringMatching(
        /^the log cannot be followed: .*projections version "1", this app's projections are version "2"/,
      ),
    });
    // and its state is still whole at the last seq it applied: not emptied by the refused reload
    expect(stateOf(two)).toEqual({ n: 10 });
    expect(two.stats()).toMatchObject({ durableSeq: 1, lastSeq: 1 });
    expect(lines).toContainEqual(
      expect.stringMatching(/refusing commands until this instance is restarted$/),
    );
    // and it does not try again (the events are gone for good): no reload after the recovery interval
    const reloads = () => lines.filter((l) => l.includes('reloading the state from the log')).length;
    const before = reloads();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(reloads()).toBe(before);
    expect(two.status).toBe('failed');
    // while release 1 goes on
    await one.execute(new Count('n', 4));
    expect(stateOf(one)).toEqual({ n: 10 });
  });
});
