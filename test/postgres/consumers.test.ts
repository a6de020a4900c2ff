import { usePostgres } from '../support/postgres';
import { Increment } from './domain';
import { useApps } from './helpers';

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
});
