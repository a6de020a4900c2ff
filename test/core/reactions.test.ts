import 'reflect-metadata';
import { Consumer, createApp, MemoryStore, On, silentLogger } from 'appendonly';
import { fixtures } from 'appendonly/testing';

const { Put, Count, Counted, conformanceClasses } = fixtures;

@Consumer('counted-reactor', { from: 'start' })
class CountedReactor {
  @On(Counted)
  counted(_event: unknown, { seq }: { seq: number; time: number }) {
    return new Put(`seen:${seq}`, seq);
  }

  @On(Counted)
  alsoCounted(_event: unknown, { seq }: { seq: number; time: number }) {
    return [new Put(`also:${seq}`, seq)];
  }
}

describe('reactions (core)', () => {
  it('@On methods return commands: one reaction of all of them, in method order', async () => {
    // given
    const store = new MemoryStore();
    const app = await createApp({
      ...conformanceClasses,
      store,
      consumers: [CountedReactor],
      logger: silentLogger,
    });
    // when
    await app.execute(new Count('n', 1));
    await app.consumer('counted-reactor')!.caughtUp();
    // then: one group of both methods' events, after the Counted
    const groups = await store.read(0, 100);
    expect(groups.map((g) => g.events.map((e) => (e.data as { key?: string }).key ?? e.type))).toEqual([
      ['n'],
      ['seen:1', 'also:1'],
    ]);
    await app.close();
  });

  it('a store without the reactions capability refuses a reaction with ConsumerError: parked, nothing appended', async () => {
    // given: a store that keeps consumers but cannot append a position with a group
    const store = new MemoryStore();
    Object.defineProperty(store, 'reactions', { value: undefined });
    const app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    await app.execute(new Put('a', 1));
    // when
    const sub = await app.subscribe('reactor', () => new Put('b', 2), { maxAttempts: 1 });
    await sub.caughtUp();
    await sub.close();
    // then
    const [record] = await store.loadConsumers();
    expect(record.parked).toHaveLength(1);
    expect(record.parked[0].error).toMatch(
      /consumer "reactor": its handler returned commands \(a reaction\) for seq 1, but the memory store cannot append them with the consumer's position/,
    );
    expect(app.stats().lastSeq).toBe(1);
    await app.close();
  });
});
