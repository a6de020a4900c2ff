import * as assert from 'node:assert/strict';
import type { App } from '../app/app';
import type { CreateAppOptions } from '../app/create-app';
import type { EventMeta } from '../app/projector';
import { On, Projection } from '../decorators/projection';
import type { AppliedEvent } from '../events/event';
import { EVENT_ID_PATTERN, newEventId } from '../events/event-id';
import { DEL, SET } from '../events/kv-events';
import type { EventGroup, EventStore } from '../store/event-store';
import { type ReplayedRecord, recordingSink } from '../store/replay-sink';
import type { ProjectionState } from '../state/projection-state';
import type { TestCase } from './conformance-compaction';
import { conformanceClasses, Count, Counted, Put } from './fixtures';

/** What the envelope cases need from the store suite. */
export interface EnvelopeHelpers {
  readonly it: TestCase;
  /** A new store instance on the test's location, not opened. */
  readonly newStore: () => EventStore;
  /** Opens an app with these options on a new store instance (closed by the suite after the test). */
  readonly openWith: (options: Omit<CreateAppOptions, 'store'>) => Promise<App>;
  /** Opens `store` as a tool would and hands it to `read`, then closes it. */
  readonly read: (store: EventStore, read: (store: EventStore) => Promise<void>) => Promise<void>;
}

/** What the envelope projection saw, per `Counted` event, in apply order (live and replay). */
const seenMeta: EventMeta[] = [];

/** Records the third argument of `@On` for every `Counted`: the envelope as projections get it. */
@Projection()
class MetaRecorder {
  @On(Counted)
  counted(e: typeof Counted.Event, kv: ProjectionState, meta: EventMeta) {
    seenMeta.push(meta);
    kv.set(e.data.key, ((kv.get(e.data.key) as number | undefined) ?? 0) + e.data.by);
  }
}

const withRecorder = { handlers: conformanceClasses.handlers, projections: [MetaRecorder] };

/** The groups of a replay, without the snapshot. */
function groupsOf(records: readonly ReplayedRecord[]): ReplayedRecord[] {
  return records.filter((r) => r.kind === 'group');
}

/**
 * The envelope on every store: each event's id and version, its command's time in ms and
 * metadata are logged with the events, and come back unchanged from a replay, after a reopen,
 * and for the events a compaction leaves; a group logged without one comes back without one.
 */
export function runEnvelopeConformance({ it, newStore, openWith, read }: EnvelopeHelpers): void {
  it('logs the envelope: ids, versions, time in ms and metadata survive append → replay → reopen', async () => {
    // given groups with every shape of envelope, and one without (as logged before envelopes)
    const t = 1_700_000_000_123;
    const groups: EventGroup[] = [
      { seq: 1, time: t, events: [SET('a', 1)], ids: [newEventId(t)], metadata: { correlationId: 'r-42' } },
      {
        seq: 2,
        time: t + 1,
        events: [Counted({ key: 'n', by: 2 }), SET('b', 'two')],
        ids: [newEventId(t + 1), newEventId(t + 1)],
        versions: [3, 1],
        metadata: { traceparent: '00-abc-01', user: { id: 7, roles: ['a', 'b'] }, note: 'é\r\n,' },
      },
      { seq: 4, time: t + 2, events: [DEL('a')], ids: [newEventId(t + 2)] },
      { seq: 5, time: 0, events: [Counted({ key: 'n', by: 1 })] },
      { seq: 6, time: t + 3, events: [SET('c', { deep: [1, 2] })], ids: [newEventId(t + 3)] },
    ];
    // when they are appended, and the log is read by a new store instance
    await read(newStore(), async (store) => {
      await store.replay(recordingSink([]));
      for (const g of groups) await store.append(g);
    });
    const records: ReplayedRecord[] = [];
    await read(newStore(), async (store) => {
      await store.replay(recordingSink(records));
    });
    // then each comes back as it was appended, the legacy one without envelope keys
    assert.deepEqual(
      groupsOf(records),
      groups.map((g) => ({ kind: 'group', ...g })),
    );
  });

  it('hands metadata and ids to projections, events$ and replay; compaction keeps those of the events it leaves', async () => {
    // given an app whose projection records its meta argument
    seenMeta.length = 0;
    const app = await openWith(withRecorder);
    const reported: AppliedEvent[] = [];
    app.events$.subscribe((e) => reported.push(e));
    // when commands run with metadata, a compaction happens, and one more runs after it
    await app.execute(new Count('n', 1), { metadata: { correlationId: 'r-1' } });
    await app.execute(new Count('n', 2));
    const compacts = typeof newStore().compact === 'function';
    if (compacts) await app.compact();
    await app.execute(new Count('n', 3), { metadata: { correlationId: 'r-3', causationId: 'r-1' } });
    await app.execute(new Put('plain', true), { metadata: { correlationId: 'r-4' } });
    const live = seenMeta.splice(0);
    await app.close();
    // then events$ reported each event flattened, with a UUID id, version 1 and its metadata
    assert.equal(reported.length, 4);
    for (const e of reported) {
      assert.match(e.id, EVENT_ID_PATTERN);
      assert.equal(e.version, 1);
      assert.equal(e.type, e.event.type);
      assert.deepEqual(e.data, e.event.data);
      assert.ok(e.time > 0);
    }
    assert.equal(new Set(reported.map((e) => e.id)).size, 4);
    assert.deepEqual(reported[0].metadata, { correlationId: 'r-1' });
    assert.equal('metadata' in reported[1], false);
    assert.deepEqual(reported[3].metadata, { correlationId: 'r-4' });
    // and the projection saw the same envelope as events$
    assert.deepEqual(
      live,
      reported.slice(0, 3).map((e) => ({
        seq: e.seq,
        time: e.time,
        id: e.id,
        version: 1,
        ...(e.metadata === undefined ? {} : { metadata: e.metadata }),
      })),
    );
    // when the log is replayed by a new app
    const again = await openWith(withRecorder);
    const replayed = seenMeta.splice(0);
    // then the events the log still holds replay with the same meta (a snapshot holds state, not events)
    assert.deepEqual(replayed, compacts ? live.slice(2) : live);
    assert.equal(again.state.get('n'), 6);
    // and a replay for a reader hands over the SET's envelope too
    await again.close();
    const records: ReplayedRecord[] = [];
    await read(newStore(), async (store) => {
      await store.replay(recordingSink(records));
    });
    const last = groupsOf(records).at(-1);
    assert.ok(last?.kind === 'group');
    assert.deepEqual(last.ids, [reported[3].id]);
    assert.deepEqual(last.metadata, { correlationId: 'r-4' });
    assert.equal(last.time, reported[3].time);
  });
}
