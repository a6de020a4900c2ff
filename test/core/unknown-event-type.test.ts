import 'reflect-metadata';
import { createApp, type EventGroup, MemoryStore, silentLogger, UnknownEventTypeError } from 'appendonly';
import { KeyValueState } from 'appendonly';

/** Writes groups straight to a store, as other code (a newer version of the app) would have. */
async function logWrittenElsewhere(groups: EventGroup[]): Promise<MemoryStore> {
  const store = new MemoryStore();
  const kv = new KeyValueState();
  await store.open({
    snapshots: { takeSnapshot: () => kv.takeSnapshot(0) },
    logger: silentLogger,
    clock: { now: Date.now },
  });
  for (const g of groups) await store.append(g);
  await store.close();
  return store;
}

describe('an event type the app does not define, found in the log', () => {
  const groups: EventGroup[] = [
    { seq: 1, time: 0, events: [{ type: 'SET', data: { key: 'a', value: 1 } }] },
    {
      seq: 2,
      time: 0,
      events: [
        { type: 'SET', data: { key: 'b', value: 2 } },
        { type: 'RenamedInV2', data: { x: 1 } },
      ],
    },
    { seq: 4, time: 0, events: [{ type: 'RenamedInV2', data: { x: 2 } }] },
  ];

  it('stops the load with an error naming the type and its sequence number', async () => {
    const store = await logWrittenElsewhere(groups);
    const attempt = createApp({ store, logger: silentLogger });
    await expect(attempt).rejects.toThrow(UnknownEventTypeError);
    await expect(createApp({ store, logger: silentLogger })).rejects.toThrow(
      /type "RenamedInV2" \(seq 3\).*unknownEventTypes: 'skip'/,
    );
  });

  it("loads without those events with unknownEventTypes: 'skip', and says how many it skipped", async () => {
    const store = await logWrittenElsewhere(groups);
    const warnings: string[] = [];
    const app = await createApp({
      store,
      unknownEventTypes: 'skip',
      logger: { ...silentLogger, warn: (m) => warnings.push(m) },
    });
    expect(Object.fromEntries(app.state.entries())).toEqual({ a: 1, b: 2 });
    expect(app.stats().lastSeq).toBe(4);
    expect(warnings).toEqual([expect.stringMatching(/skipped 2 event\(s\) of type RenamedInV2/)]);
    await app.close();
  });
});
