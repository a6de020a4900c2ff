import { type App, ConsumerError, createApp, MemoryStore, silentLogger } from 'appendonly';
import { fixtures } from 'appendonly/testing';

const { Put, conformanceClasses } = fixtures;

/**
 * `resetConsumer` checks that the events after the new position are there, deletes the record
 * and saves it anew. A compaction that loads the records in between (the name has none then)
 * drops those events: the reset must not leave a record that can never run.
 */
describe('resetConsumer racing a compaction', () => {
  it('refuses, and leaves no record, when the events after the new position were dropped meanwhile', async () => {
    // given: "idle" at seq 0, its events kept below the snapshot for it, and a store that
    // compacts right after the reset deletes the record (as another instance's compaction may,
    // on a shared log)
    let app: App | null = null;
    let compactOnDelete = false;
    class CompactingAfterDelete extends MemoryStore {
      override async deleteConsumer(name: string): Promise<boolean> {
        const deleted = await super.deleteConsumer(name);
        if (compactOnDelete) {
          compactOnDelete = false;
          await app!.execute(new Put('c', 1));
          await app!.compact();
        }
        return deleted;
      }
    }
    const store = new CompactingAfterDelete();
    app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    try {
      await (await app.subscribe('idle', () => {})).close();
      for (let i = 0; i < 10; i++) await app.execute(new Put(`k${i}`, i));
      await app.compact();
      expect(app.stats().store?.retention).toMatchObject({ keptFrom: 1, stale: [] });
      // when: it is reset to start after seq 0: the events are there, then the compaction in
      // between drops them (no record holds them at that moment)
      compactOnDelete = true;
      const reset = app.resetConsumer('idle', { after: 0 });
      // then: refused, naming where it could start, and no record is left to fail later
      await expect(reset).rejects.toBeInstanceOf(ConsumerError);
      await expect(reset).rejects.toThrow(
        /cannot start after seq 0: .*subscribe with \{ from: \{ after: 11 \} \}/,
      );
      expect(await store.loadConsumers()).toEqual([]);
      // and subscribing where it said works
      const seen: number[] = [];
      const again = await app.subscribe('idle', (e) => void seen.push(e.seq), { from: { after: 11 } });
      await app.execute(new Put('d', 1));
      await again.caughtUp();
      expect(seen).toEqual([12]);
      await again.close();
    } finally {
      await app.close();
    }
  });
});
