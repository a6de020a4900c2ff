import 'reflect-metadata';
import { type ConsumerRecord, createApp, silentLogger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { admin, usePostgres } from '../support/postgres';
import { classes, Increment } from './domain';
import { bareStore, useApps } from './helpers';

/** Consumers on a shared log: a consumer on one instance is handed what every instance commits. */
describe('PostgresStore: a consumer on a shared log', () => {
  const server = usePostgres();
  const open = useApps();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it("is handed the other instances' commands too, in log order, once each", async () => {
    // given: two instances on one log, a consumer on the first
    const a = await open(url, 'shared-consumer');
    const b = await open(url, 'shared-consumer');
    const seen: number[] = [];
    const sub = await a.app.subscribe('audit', (e) => void seen.push(e.seq));
    // when: both write, concurrently
    await Promise.all([
      ...Array.from({ length: 30 }, () => a.app.execute(new Increment('x'))),
      ...Array.from({ length: 30 }, () => b.app.execute(new Increment('y'))),
    ]);
    await b.app.sync();
    await sub.caughtUp();
    // then: every event of the log, once, in order
    expect(seen).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(sub.stats().position).toBe(60);
  });

  it('read hands over a command longer than the rows it asks for first, whole, after the ones before it', async () => {
    // given: a log of one short command, then one of 300 events (more than `limit + 64` rows:
    // the first read finds only part of it), then another short one
    const store = await bareStore(url, 'long-group');
    try {
      const set = (i: number) => ({ type: 'Set', data: { key: `k${i}`, value: i } });
      await store.append({ seq: 1, time: 0, events: [set(0)] });
      await store.append({ seq: 2, time: 0, events: Array.from({ length: 300 }, (_, i) => set(i + 1)) });
      await store.append({ seq: 302, time: 0, events: [set(301)] });
      // when: a consumer at seq 1 reads 10 events, and one inside the long command reads 1
      const after1 = await store.read(1, 10);
      const inside = await store.read(150, 1);
      // then: each gets the long command whole (and nothing more, past the limit)
      expect(after1.map((g) => [g.seq, g.events.length])).toEqual([[2, 300]]);
      expect(inside.map((g) => [g.seq, g.events.length])).toEqual([[2, 300]]);
      expect((await store.read(301, 10)).map((g) => g.seq)).toEqual([302]);
    } finally {
      await store.close();
    }
  });

  it('a consumer that checkpoints while a compaction marks it stale is not marked, and its events are kept', async () => {
    // given: a consumer 20 events behind (maxConsumerLag 5), whose checkpoint to seq 3 lands
    // after the compaction has loaded the records (a store whose load is followed by that save)
    class CheckpointAfterLoad extends PostgresStore {
      override async loadConsumers(): Promise<readonly ConsumerRecord[]> {
        const records = await super.loadConsumers();
        if (records.some((r) => r.name === 'slow' && r.position === 0))
          await this.saveConsumer({ name: 'slow', position: 3, parked: [] });
        return records;
      }
    }
    const store = new CheckpointAfterLoad({ connectionString: url, log: 'moved-on', maxConsumerLag: 5 });
    const app = await createApp({ ...classes, store, logger: silentLogger });
    try {
      await (await app.subscribe('slow', () => {})).close();
      for (let i = 0; i < 20; i++) await app.execute(new Increment('x'));
      // when: the log is compacted
      await app.compact();
      // then: the mark was not stored, so no event it needs was dropped: it is not stale, holds
      // the log, and is handed every event after its position
      expect(await store.loadConsumers()).toEqual([{ name: 'slow', position: 3, parked: [] }]);
      expect(app.stats().store?.retention).toMatchObject({ seq: 20, stale: [] });
      const seen: number[] = [];
      const again = await app.subscribe('slow', (e) => void seen.push(e.seq));
      await again.caughtUp();
      expect(seen).toEqual(Array.from({ length: 17 }, (_, i) => i + 4));
      expect(again.stats().position).toBe(20);
    } finally {
      await app.close();
    }
  });

  it('a consumers table from before stale marks: a role that cannot add the column keeps its positions, and compaction keeps what it could not mark', async () => {
    // given: a log made by the owner, a consumers table without the stale column, and a role
    // with row rights only
    const schema = 'oldconsumers';
    const owner = (connectionString: string, maxConsumerLag?: number) =>
      createApp({
        ...classes,
        store: new PostgresStore({
          connectionString,
          schema,
          ...(maxConsumerLag !== undefined ? { maxConsumerLag } : {}),
        }),
        logger: silentLogger,
      });
    await (await owner(url)).close();
    await admin(
      url,
      `CREATE TABLE ${schema}.consumers (log text NOT NULL, name text NOT NULL, position bigint NOT NULL, parked text NOT NULL, PRIMARY KEY (log, name))`,
    );
    // (and the holders' epochs, as an administrator makes them for a role without CREATE)
    await admin(
      url,
      `CREATE TABLE ${schema}.consumer_leases (log text NOT NULL, name text NOT NULL, epoch bigint NOT NULL, PRIMARY KEY (log, name))`,
    );
    const role = `consumers_role_${process.pid}_${Date.now()}`;
    await admin(url, `CREATE ROLE ${role} LOGIN`);
    await admin(url, `GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
    await admin(url, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
    const asRole = new URL(url);
    asRole.username = role;
    try {
      const app = await owner(asRole.toString(), 2);
      const slow = await app.subscribe('slow', () => {});
      await slow.close();
      // when: it falls 10 events behind and the log is compacted (maxConsumerLag 2)
      for (let i = 0; i < 10; i++) await app.execute(new Increment('x'));
      await app.compact();
      // then: the mark could not be stored, so its events were kept, and it catches up whole
      expect(app.stats().store?.retention).toEqual({
        seq: 10,
        heldBy: { name: 'slow', position: 0 },
        keptFrom: 1,
        keptEvents: 10,
        stale: [],
      });
      const seen: number[] = [];
      const again = await app.subscribe('slow', (e) => void seen.push(e.seq));
      await again.caughtUp();
      expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      await app.close();
      // and: the owner's instance adds the column at its first save, and marks from then on
      const byOwner = await owner(url, 2);
      await byOwner.subscribe('idle', () => {}, { from: 'start' }).then((s) => s.close());
      await (byOwner as unknown as { store: PostgresStore }).store.saveConsumer({
        name: 'idle',
        position: 0,
        parked: [],
      });
      await byOwner.execute(new Increment('x'));
      await byOwner.compact();
      expect(byOwner.stats().store?.retention?.stale).toEqual(['idle']);
      await byOwner.close();
    } finally {
      await admin(url, `DROP OWNED BY ${role}`);
      await admin(url, `DROP ROLE ${role}`);
    }
  });
});
