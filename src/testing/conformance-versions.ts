import * as assert from 'node:assert/strict';
import type { App } from '../app/app';
import type { CreateAppOptions } from '../app/create-app';
import { On, Projection } from '../decorators/projection';
import type { JsonValue } from '../events/json';
import { LogCompactedError, ProjectionsVersionError } from '../errors';
import type { Logger } from '../runtime/logger';
import type { EventStore } from '../store/event-store';
import { type ReplayedRecord, recordingSink } from '../store/replay-sink';
import type { ProjectionState } from '../state/projection-state';
import type { TestCase } from './conformance-compaction';
import { conformanceClasses, Count, Counted, Put } from './fixtures';

/** What the projections-version cases need from the store suite. */
export interface VersionHelpers {
  readonly it: TestCase;
  /** A new store instance on the test's location, not opened. */
  readonly newStore: () => EventStore;
  /** Opens an app with these options on a new store instance (closed by the suite after the test). */
  readonly openWith: (options: Omit<CreateAppOptions, 'store'>) => Promise<App>;
  /** Opens `store` as a tool would and hands it to `read`, then closes it. */
  readonly read: (store: EventStore, read: (store: EventStore) => Promise<void>) => Promise<void>;
}

/**
 * The same `Counted` events as the fixtures' `Counters`, read another way (each counts tenfold):
 * the projections of a later release, so that a state rebuilt by them differs from the one the
 * earlier release's snapshot holds.
 */
@Projection()
class TenfoldCounters {
  @On(Counted)
  counted(e: typeof Counted.Event, kv: ProjectionState) {
    kv.set(e.data.key, ((kv.get(e.data.key) as number | undefined) ?? 0) + 10 * e.data.by);
  }
}

/** Release 1: the conformance classes. Release 2: the same handlers, tenfold counters. */
const release1 = conformanceClasses;
const release2 = { handlers: conformanceClasses.handlers, projections: [TenfoldCounters] };

/**
 * `createApp({ projectionsVersion })` on every compacting store: a compaction's snapshot records
 * the version of the projections that computed it; the same version (or an unversioned app, or an
 * unversioned snapshot) loads it as it is; another version never loads it, and either rebuilds
 * the state from the events, with a warning naming both versions, or, where the store's
 * `replay({ after: 0 })` says compaction dropped them, refuses with `PROJECTIONS_VERSION`.
 */
export function runVersionConformance({ it, newStore, openWith, read }: VersionHelpers): void {
  /** True when the store compacts (a store without compaction writes no snapshot to check). */
  const compacts = (): boolean => typeof newStore().compact === 'function';

  /** A log written by release 1: counters, a plain key, a compaction, then more commands. */
  const writeRelease1 = async (version: string | number | undefined): Promise<Record<string, JsonValue>> => {
    const app = await openWith({ ...release1, projectionsVersion: version });
    for (let i = 1; i <= 5; i++) await app.execute(new Count('n', i));
    await app.execute(new Put('plain', 'kept'));
    await app.compact();
    await app.execute(new Count('n', 100));
    const state = stateOf(app);
    await app.close();
    return state;
  };

  /**
   * Whether the store still has every event of the log, snapshot or not: its own
   * `replay({ after: 0 })` says so, and decides which outcome another version must meet.
   */
  const keepsEvents = async (): Promise<boolean> => {
    let kept = true;
    await read(newStore(), async (store) => {
      await store.replay(recordingSink([]), { after: 0 }).catch((err: unknown) => {
        if (!(err instanceof LogCompactedError)) throw err;
        kept = false;
      });
    });
    return kept;
  };

  /** The log's records as a tool reads them. */
  const records = async (): Promise<ReplayedRecord[]> => {
    const out: ReplayedRecord[] = [];
    await read(newStore(), async (store) => {
      await store.replay(recordingSink(out));
    });
    return out;
  };

  it('a compaction records the projections version; the same version loads its snapshot as it is', async () => {
    if (!compacts()) return;
    // given
    const live = await writeRelease1(1);
    // when
    const app = await openWith({ ...release1, projectionsVersion: '1' });
    // then: the snapshot was loaded (its keys), not rebuilt, and says which version built it
    assert.deepEqual(stateOf(app), live);
    assert.deepEqual(live, { n: 115, plain: 'kept' });
    assert.equal(app.stats().entriesReplayed, 2);
    assert.equal(app.stats().groupsReplayed, 1);
    await app.close();
    const snapshot = (await records()).find((r) => r.kind === 'snapshot');
    assert.deepEqual(snapshot, { kind: 'snapshot', seq: 6, projectionsVersion: '1' });
  });

  it('another projections version never loads the snapshot: it rebuilds from the events with a warning, or refuses naming both versions', async () => {
    if (!compacts()) return;
    // given: release 1's log, and whether the store still has every event the snapshot covers
    const live = await writeRelease1(1);
    const eventsKept = await keepsEvents();
    // when: release 2 starts on it
    const warnings: string[] = [];
    const opened = openWith({ ...release2, projectionsVersion: 2, logger: recording(warnings) });
    // then
    if (eventsKept) {
      const app = await opened;
      assert.deepEqual(stateOf(app), { n: 1150, plain: 'kept' });
      assert.equal(app.stats().entriesReplayed, 0);
      assert.equal(app.stats().groupsReplayed, 7);
      const warning = warnings.find((w) => w.includes('rebuilding the state from the events'));
      assert.ok(warning?.includes('version "1"') && warning.includes('version "2"'), warnings.join('\n'));
      await app.close();
    } else {
      await assert.rejects(opened, (err: unknown) => {
        assert.ok(err instanceof ProjectionsVersionError, String(err));
        assert.equal(err.code, 'PROJECTIONS_VERSION');
        assert.deepEqual([err.appVersion, err.snapshotVersion, err.snapshotSeq], ['2', '1', 6]);
        assert.match(err.message, /projections version "1", this app's projections are version "2"/);
        return true;
      });
      // the refusal changed nothing: release 1 still loads its snapshot
      const again = await openWith({ ...release1, projectionsVersion: 1 });
      assert.deepEqual(stateOf(again), live);
      assert.equal(again.stats().entriesReplayed, 2);
      await again.close();
    }
  });

  it('after a rebuild, the next compaction records the new version, which then loads as it is', async () => {
    if (!compacts()) return;
    // given: release 2 rebuilt release 1's log (where the store kept the events)
    await writeRelease1('1');
    if (!(await keepsEvents())) return; // the store dropped them: the case above checks the refusal
    const rebuilt = await openWith({ ...release2, projectionsVersion: '2' });
    // when
    await rebuilt.compact();
    await rebuilt.close();
    // then
    const snapshot = (await records()).find((r) => r.kind === 'snapshot');
    assert.deepEqual(snapshot, { kind: 'snapshot', seq: 7, projectionsVersion: '2' });
    const app = await openWith({ ...release2, projectionsVersion: '2' });
    assert.deepEqual(stateOf(app), { n: 1150, plain: 'kept' });
    assert.equal(app.stats().groupsReplayed, 0);
    await app.close();
  });

  it('an unversioned app loads any snapshot and writes unversioned ones; a versioned app loads an unversioned snapshot', async () => {
    if (!compacts()) return;
    // given: a snapshot of version 1
    const live = await writeRelease1(1);
    // when: an app without projectionsVersion opens it, and compacts
    const unversioned = await openWith(release1);
    // then: loaded as it is, and its snapshot has no version
    assert.deepEqual(stateOf(unversioned), live);
    assert.equal(unversioned.stats().entriesReplayed, 2);
    await unversioned.compact();
    await unversioned.close();
    assert.deepEqual(
      (await records()).find((r) => r.kind === 'snapshot'),
      { kind: 'snapshot', seq: 7 },
    );
    // and: any version loads that unversioned snapshot as it is, saying so
    const lines: string[] = [];
    const versioned = await openWith({ ...release2, projectionsVersion: 'v9', logger: recording(lines) });
    assert.deepEqual(stateOf(versioned), live);
    assert.equal(versioned.stats().entriesReplayed, 2);
    assert.ok(
      lines.some((l) => l.includes('has no projections version') && l.includes('"v9"')),
      lines.join('\n'),
    );
    await versioned.close();
  });
}

/** A logger that keeps every line (info, warnings and errors alike). */
function recording(lines: string[]): Logger {
  return { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) };
}

function stateOf(app: App): Record<string, JsonValue> {
  return Object.fromEntries(app.state.entries());
}
