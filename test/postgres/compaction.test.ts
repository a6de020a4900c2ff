import type { AppStats } from 'appendonly';
import { stopChild } from '../support/child';
import { usePostgres } from '../support/postgres';
import { type Acked, ask, fund, logShape, stateOf, useApps, useWorkers } from './helpers';

/** Compaction on a shared log: any instance runs it while the others write, and those behind it reload. */
describe('PostgresStore: compaction', () => {
  const server = usePostgres();
  const open = useApps();
  const spawn = useWorkers();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it('racing three writer processes, and a follower stopped behind it: the follower reloads from the snapshot and goes on; exact counts', async () => {
    // given: five accounts of 1000; three processes increment and transfer, 16 in flight each,
    // and a fourth follows them without writing
    const log = 'race';
    await fund(open, url, log);
    const writers = [1, 2, 3].map((id) => spawn(url, log, id, 'mixed'));
    const follower = spawn(url, log, 4, 'follow');
    await Promise.all([...writers, follower].map((w) => w.waitFor(/^ready$/)));
    for (const w of writers) w.send('go');
    await Promise.all(writers.map((w) => w.waitFor(/^ack /, 50)));
    // the follower has read the writers' first commands from the events themselves (no snapshot)
    await ask(follower, 'sync', 'state');
    const before = await ask<AppStats>(follower, 'stats', 'stats');
    expect(before.durableSeq).toBeGreaterThan(5);
    expect(before.entriesReplayed).toBe(0);
    expect((await logShape(url, log)).snapshotSeq).toBe(0);

    // when: the follower is stopped (SIGSTOP); it has read no further than the head now
    await stopChild(follower);
    const stoppedAt = (await logShape(url, log)).max;
    // the writers go on past it
    await Promise.all(
      writers.map((w) => w.waitFor((l) => l.startsWith('ack ') && Number(l.slice(4)) > stoppedAt)),
    );
    // two of them compact at once, while all three write (keepHistory false: covered events go)
    const compactions = await Promise.all(
      writers.slice(0, 2).map(async (w) => {
        const from = w.lines.length;
        w.send('compact');
        return w.waitFor(/^compact(ed|-failed) /, from);
      }),
    );
    const compacted = await logShape(url, log);

    // then: a compaction took its snapshot beyond the follower's seq, and the events the
    // follower has not read are gone from the log
    expect(compactions.some((c) => c.startsWith('compacted '))).toBe(true);
    expect(compacted.snapshotSeq).toBeGreaterThan(stoppedAt);
    expect(compacted.min).toBe(compacted.snapshotSeq + 1);
    // resumed (SIGCONT), the follower's catch-up is told LOG_COMPACTED: it reloads from the snapshot
    const resumed = follower.lines.length;
    follower.process.kill('SIGCONT');
    const warning = await follower.waitFor(/^log warn .*reloading the state from the log$/, resumed);
    const [, after, first] = /after seq (\d+) .* the first event still in the log is seq (\d+)/.exec(
      warning,
    )!;
    expect(Number(after)).toBeLessThanOrEqual(stoppedAt);
    expect(Number(first)).toBeGreaterThan(stoppedAt + 1);
    // (sync joins the catch-up under way: once it resolves, the reload is whole)
    await ask(follower, 'sync', 'state');
    const reloaded = await ask<AppStats>(follower, 'stats', 'stats');
    expect(reloaded.status).toBe('ready');
    expect(reloaded.entriesReplayed).toBeGreaterThan(0);
    // and goes on: the writers write more, then stop
    const more = writers.map((w) => w.lines.length);
    await Promise.all(writers.map((w, i) => w.waitFor(/^ack /, more[i] + 50)));
    const acked = await Promise.all(writers.map((w) => ask<Acked>(w, 'stop', 'stopped')));
    // every instance, brought to the head, holds the same state: the exact count, no money made or lost
    const states = await Promise.all([...writers, follower].map((w) => ask(w, 'sync', 'state')));
    const total = acked.reduce((sum, a) => sum + a.increment, 0);
    expect(states[0].counter).toBe(total);
    const balances = [0, 1, 2, 3, 4].map((i) => states[0][`acct:${i}`] as number);
    expect(balances.reduce((a, b) => a + b, 0)).toBe(5000);
    for (const b of balances) expect(b).toBeGreaterThanOrEqual(0);
    for (const s of states.slice(1)) expect(s).toEqual(states[0]);
    const final = await ask<AppStats>(follower, 'stats', 'stats');
    expect(final.durableSeq).toBeGreaterThan(reloaded.durableSeq);
    // a fresh instance loads the snapshot and the events above it to the same state
    const fresh = await open(url, log);
    expect(stateOf(fresh.app)).toEqual(states[0]);
    expect(fresh.app.stats().entriesReplayed).toBeGreaterThan(0);
    const shape = await logShape(url, log);
    expect(shape).toMatchObject({ min: shape.snapshotSeq + 1, n: shape.max - shape.snapshotSeq });
    expect(fresh.app.stats().lastSeq).toBe(shape.max);
  }, 180_000);
});
