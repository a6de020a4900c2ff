import { KeyValueState, replaySink, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { tempDir } from './helpers';

/**
 * Regression: an append made right when the writer's pump finished (awaiting the previous
 * append through the store API, one microtask hop) found the pump still running and was never
 * written: the caller waited forever. Every policy, store API only, no app in between.
 */
describe.each(['always', 'everysec', 'no'] as const)(
  'AofStore %s: appends awaited one by one',
  (appendfsync) => {
    it('all resolve, and all are in the log', async () => {
      const { dir, cleanup } = tempDir();
      try {
        const store = new AofStore({ dir, appendfsync });
        const kv = new KeyValueState();
        await store.open({
          snapshots: { takeSnapshot: () => kv.takeSnapshot(0) },
          logger: silentLogger,
          clock: { now: Date.now },
        });
        for (let i = 1; i <= 50; i++)
          await store.append({
            seq: i,
            time: 0,
            events: [{ type: 'SET', data: { key: `k${i}`, value: i } }],
          });
        await store.close();
        const reader = new AofStore({ dir });
        await reader.open({
          snapshots: { takeSnapshot: () => kv.takeSnapshot(0) },
          logger: silentLogger,
          clock: { now: Date.now },
        });
        let groups = 0;
        await reader.replay(
          replaySink({
            group: () => {
              groups++;
            },
          }),
        );
        await reader.close();
        expect(groups).toBe(50);
      } finally {
        cleanup();
      }
    });
  },
);
