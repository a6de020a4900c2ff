import { KeyValueState, LogCompactedError, recordingSink, silentLogger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { admin, usePostgres } from '../support/postgres';
import { Increment } from './domain';
import { stateOf, useApps } from './helpers';

/** Compaction on a shared log: any instance runs it while the others write. */
describe('PostgresStore: compaction', () => {
  const server = usePostgres();
  const open = useApps();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it('racing three writers, and a follower stopped behind it: exact counts, the follower told LOG_COMPACTED', async () => {
    // given: three instances on one log, and a follower that read up to seq 30 and stopped
    const log = 'race';
    const writers = await Promise.all([1, 2, 3].map(() => open(url, log)));
    for (let i = 0; i < 30; i++) await writers[i % 3].app.execute(new Increment('counter'));
    const follower = new PostgresStore({ connectionString: url, log });
    await follower.open({
      snapshots: { takeSnapshot: () => new KeyValueState().takeSnapshot(0) },
      logger: silentLogger,
      clock: { now: Date.now },
    });
    const read = await follower.replay(recordingSink([]));
    expect(read.lastSeq).toBe(30);
    // when: 3 × 100 increments at once, while two instances compact
    const load = writers.flatMap((w) =>
      Array.from({ length: 100 }, () => w.app.execute(new Increment('counter'))),
    );
    const compactions = [writers[0].app.compact(), writers[1].app.compact()];
    const settled = await Promise.allSettled([...load, ...compactions]);
    // then: every command landed; the compactions ran one at a time and at least one succeeded
    expect(settled.slice(0, 300).every((s) => s.status === 'fulfilled')).toBe(true);
    const done = settled.slice(300).filter((s) => s.status === 'fulfilled');
    expect(done.length).toBeGreaterThan(0);
    const snapshot = await admin(
      url,
      'SELECT snapshot_seq::int AS seq FROM appendonly.heads WHERE log = $1',
      [log],
    );
    expect(snapshot.rows[0].seq).toBeGreaterThanOrEqual(30);
    // a new instance loads snapshot + events to the exact count
    const fourth = await open(url, log);
    expect(fourth.app.state.get('counter')).toBe(330);
    expect(fourth.app.stats().entriesReplayed).toBeGreaterThan(0);
    // and the follower behind the compaction point is told so, naming the first event left
    await expect(follower.replay(recordingSink([]), { after: 30 })).rejects.toBeInstanceOf(LogCompactedError);
    const fresh: Parameters<typeof recordingSink>[0] = [];
    await follower.replay(recordingSink(fresh));
    expect(fresh[0]).toMatchObject({ kind: 'snapshot' });
    await follower.close();
    expect(stateOf(fourth.app)).toEqual({ counter: 330 });
  }, 60_000);
});
