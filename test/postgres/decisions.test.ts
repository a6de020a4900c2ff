import { usePostgres } from '../support/postgres';
import { CreateOnce, decisions, Increment, PutIfAbsent, SlowIncrement } from './domain';
import { eventually, type Opened, useApps } from './helpers';

/**
 * Decisions that append nothing, and decisions that take time, on a log other instances write:
 * each ends (resolved, or rejected on its own), and nothing waits behind it for ever.
 */
describe('PostgresStore: decisions of no events, and slow ones, beside other instances', () => {
  const server = usePostgres();
  const open = useApps();
  let url = '';
  let n = 0;
  let log = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  beforeEach(() => {
    log = `decisions-${++n}`;
  });
  afterEach(() => decisions.clear());

  /** Two instances on the log, and which of them lost the race `race` runs on both (one conflict). */
  const raced = async (race: (o: Opened) => Promise<unknown>) => {
    const a = await open(url, log);
    const b = await open(url, log);
    const outcomes = await Promise.allSettled([race(a), race(b)]);
    const conflicts = [a, b].map((o) => o.store.stats().conflicts);
    expect(conflicts[0] + conflicts[1]).toBe(1);
    const lost = conflicts[0] === 1 ? 0 : 1;
    return { loser: [a, b][lost], winner: [a, b][1 - lost], lost: outcomes[lost] };
  };

  /** `o` writes Increments one after another until the returned function is called. */
  const writing = (o: Opened) => {
    let running = true;
    const done = (async () => {
      while (running) await o.app.execute(new Increment('steady'));
    })();
    return async () => {
      running = false;
      await done;
    };
  };

  it('the loser of a put-if-absent race decides nothing, and its app goes on', async () => {
    // when: two instances put the same key at once
    const { loser, lost } = await raced((o) => o.app.execute(new PutIfAbsent('k', 'mine')));
    // then: the loser, decided again on the winner's put, appends nothing and resolves
    expect(lost).toMatchObject({ status: 'fulfilled', value: { events: [] } });
    expect(loser.app.status).toBe('ready');
    await expect(loser.app.execute(new Increment('after'))).resolves.toMatchObject({ firstSeq: 2 });
  });

  it('a command of no events after a conflict resolves, during turns and after them', async () => {
    // given: a race whose loser's second decision is refused by its handler
    const { loser, lost } = await raced((o) => o.app.execute(new CreateOnce('k', 'mine')));
    expect(lost.status).toBe('rejected');
    // when: the loser decides nothing, at once (in turns) and once turns have ended (1 s later)
    const during = await loser.app.execute(new PutIfAbsent('k', 'again'));
    await new Promise((resolve) => setTimeout(resolve, 1300));
    const after = await loser.app.execute(new PutIfAbsent('k', 'again'));
    // then: both resolve with no events, the app stays ready, and what follows is decided
    expect([during.events, after.events]).toEqual([[], []]);
    expect(loser.app.status).toBe('ready');
    await expect(loser.app.execute(new Increment('next'))).resolves.toMatchObject({ firstSeq: 2 });
    await loser.app.close();
  });

  it('a follower commits a slow async decision while another instance writes steadily', async () => {
    // given: B writes one command after another; A follows every one of them
    const a = await open(url, log);
    const b = await open(url, log);
    const stop = writing(b);
    await eventually(() => a.app.stats().durableSeq >= 20);
    // when: A decides a command in 50 ms, longer than B's commands come
    const slow = new SlowIncrement('slow', 50);
    const decided = a.app.execute(slow);
    const behind = a.app.execute(new Increment('behind'));
    // then: it commits, decided on a state no other command changed (once, or again after a
    // conflict, never without end), and the command behind it commits after it
    const [result, next] = await Promise.all([decided, behind]);
    await stop();
    expect(next.firstSeq).toBeGreaterThan(result.firstSeq);
    expect(decisions.get(slow)).toBeLessThan(10);
    await a.app.sync();
    expect(a.app.state.get('slow')).toBe(1);
  });

  it('a slow async decision commits in turns, while the other instance writes steadily', async () => {
    // given: the two instances raced (the loser decides in turns from now on), the winner writes
    const { loser, winner } = await raced((o) => o.app.execute(new PutIfAbsent('k', 'mine')));
    const stop = writing(winner);
    // when: the loser decides a 50 ms command with another behind it
    const slow = new SlowIncrement('slow', 50);
    const [result, next] = await Promise.all([
      loser.app.execute(slow),
      loser.app.execute(new Increment('behind')),
    ]);
    await stop();
    // then
    expect(next.firstSeq).toBeGreaterThan(result.firstSeq);
    expect(decisions.get(slow)).toBeLessThan(10);
  });

  it('a follower shows its lag while it cannot catch up yet', async () => {
    // given: B busy deciding a slow command (its catch-ups wait for that decision)
    const a = await open(url, log);
    const b = await open(url, log);
    const slow = b.app.execute(new SlowIncrement('slow', 1500));
    // when: A commits five commands
    for (let i = 0; i < 5; i++) await a.app.execute(new Increment('n'));
    // then: B's stats show the five it has heard of and not applied, then none once it has
    await eventually(() => b.app.stats().lag === 5, 1400);
    await slow.catch(() => {});
    await b.app.sync();
    expect(b.app.stats().lag).toBe(0);
  });
});
