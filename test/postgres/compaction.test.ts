import {
  AppendConflictError,
  LogCompactedError,
  LogLostError,
  type AppStats,
  type EventGroup,
  type JsonValue,
  silentLogger,
} from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import pg from 'pg';
import { type ReplayedRecord, recordingSink } from '../../src/store/replay-sink';
import { stopChild } from '../support/child';
import { admin, usePostgres } from '../support/postgres';
import {
  type Acked,
  ask,
  bareStore,
  eventually,
  fund,
  lockedCatchUp,
  logShape,
  snapshotAtStore,
  stateOf,
  useApps,
  useWorkers,
} from './helpers';

/** Compaction on a shared log: any instance runs it while the others write, and those behind it reload. */
describe('PostgresStore: compaction', () => {
  const server = usePostgres();
  const open = useApps();
  const spawn = useWorkers();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it('after commits lost in a crash that this instance has not noticed yet, its compaction is refused before the switch, and its next command reloads', async () => {
    // given: A applied seq 1 and 2 under `no`; a crash lost seq 2 and another instance's
    // command took seq 2 again (done here by hand in one step, with A's connections left up:
    // its head polls find the head at 2, where it left it, so it has not noticed)
    const log = 'lost-then-compacted';
    const a = await open(url, log, 'no');
    await a.app.execute(new fixtures.Put('a', 1));
    await a.app.execute(new fixtures.Put('b', 2));
    await admin(
      url,
      `WITH other AS (SELECT gen_random_uuid() AS batch),
            retaken AS (UPDATE appendonly.events e SET batch = o.batch,
              data = jsonb_set(jsonb_set(e.data::jsonb, '{key}', '"c"'), '{value}', '3')::text
              FROM other o WHERE e.log = $1 AND e.seq = 2)
       UPDATE appendonly.heads h SET batch = o.batch FROM other o WHERE h.log = $1`,
      [log],
    );
    // when: A compacts, its state still {a, b}
    const compacted = a.app.compact();
    // then: refused, naming the lost seq; the log names no snapshot (none of b would ever replay)
    await expect(compacted).rejects.toBeInstanceOf(LogLostError);
    await expect(compacted).rejects.toThrow(
      /seq 2 is now from batch .*the compaction at seq 2 was not switched in/,
    );
    expect((await logShape(url, log)).snapshotSeq).toBe(0);
    // and A's next command checks the log first, reloads it as it is, and is decided on that
    await eventually(() =>
      a.app.execute(new fixtures.Put('d', 4)).then(
        () => true,
        () => false,
      ),
    );
    expect(stateOf(a.app)).toEqual({ a: 1, c: 3, d: 4 });
    const { rows } = await admin(url, 'SELECT data FROM appendonly.events WHERE log = $1 ORDER BY seq', [
      log,
    ]);
    expect(rows.map((r) => JSON.parse(r.data).key)).toEqual(['a', 'c', 'd']);
    // and a compaction now covers the log as it is: an instance opened after it loads that
    await a.app.compact();
    expect((await logShape(url, log)).snapshotSeq).toBe(3);
    expect(stateOf((await open(url, log)).app)).toEqual({ a: 1, c: 3, d: 4 });
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

  it('a snapshot holding commands that a conflict refused is never recorded, even when the catch-up that follows moves past its seq between two looks', async () => {
    // given: B logged seq 1-2, one command of two events; A, deciding seq 1 on its empty state,
    // conflicted and caught up: for a second it locks the head before each append
    const log = 'refused';
    const b = await bareStore(url, log);
    const states: { seq: number; entries: [string, JsonValue][] }[] = [];
    let taken: () => void = () => {};
    const snapshotTaken = new Promise<void>((resolve) => {
      taken = resolve;
    });
    const a = new PostgresStore({ connectionString: url, log });
    await a.open({
      logger: silentLogger,
      clock: { now: Date.now },
      snapshots: {
        // The app's state as the test sets it: what A has applied, its own undecided command included.
        takeSnapshot: () => {
          const state = states[states.length - 1];
          taken();
          return {
            seq: state.seq,
            size: state.entries.length,
            entries: () => state.entries[Symbol.iterator](),
            release: () => {},
          };
        },
      },
    });
    const holder = new pg.Client({ connectionString: url });
    try {
      const group = (seq: number, ...keys: string[]): EventGroup => ({
        seq,
        time: Date.now(),
        events: keys.map((key) => ({ type: 'Set', data: { key, value: key } })),
      });
      await b.append(group(1, 'b1', 'b2'));
      await expect(a.append(group(1, 'a1'))).rejects.toBeInstanceOf(AppendConflictError);
      await a.replay(recordingSink([]), { after: 0 });
      await b.append(group(3, 'b3', 'b4'));
      // when: A applies a command at seq 3 (its state: seq 3, with the command's key), whose
      // append waits on the head row, locked by another transaction; A compacts meanwhile
      states.push({ seq: 3, entries: [['a3', 'a3']] });
      await holder.connect();
      await holder.query('BEGIN');
      await holder.query('SELECT seq FROM appendonly.heads WHERE log = $1 FOR UPDATE', [log]);
      const appended = a.append(group(3, 'a3'));
      const compacted = a.compact();
      await snapshotTaken;
      // the lock goes: A's append finds the head at 4 (a conflict); its catch-up reads B's
      // command on the head lock the append kept, without a round trip, so that A has
      // read past seq 3 before the compaction looks again
      const caughtUp = appended.then(
        () => {
          throw new Error('the append landed on a moved head');
        },
        (err: unknown) => {
          expect(err).toBeInstanceOf(AppendConflictError);
          states.push({ seq: 4, entries: ['b1', 'b2', 'b3', 'b4'].map((key) => [key, key]) });
          return a.replay(recordingSink([]), { after: 2 });
        },
      );
      await holder.query('ROLLBACK');
      expect((await caughtUp).lastSeq).toBe(4);
      // then: the snapshot of seq 3 (A's refused command, and seq 3 in the middle of B's) is
      // not recorded: the compaction takes one of the log's state at seq 4
      expect(await compacted).toMatchObject({ seq: 4 });
      expect(await logShape(url, log)).toMatchObject({ snapshotSeq: 4 });
      const records: ReplayedRecord[] = [];
      const reader = await bareStore(url, log);
      try {
        await reader.replay(recordingSink(records));
      } finally {
        await reader.close();
      }
      expect(records).toEqual([
        { kind: 'snapshot', seq: 4 },
        ...['b1', 'b2', 'b3', 'b4'].map((key) => ({ kind: 'entry', key, value: key })),
      ]);
    } finally {
      await holder.end().catch(() => {});
      await a.close();
      await b.close();
    }
  });

  it.each([
    { snapshotSeq: 9000, deletedTo: 8500, what: 'a page starts past a slice' },
    { snapshotSeq: 10_000, deletedTo: 10_000, what: 'the events end early' },
  ])(
    'a catch-up on the locked head whose later pages a compaction deletes under it reloads, rather than calling the log corrupt or missing commands ($what)',
    async ({ snapshotSeq, deletedTo }) => {
      // given: 10,000 commands of one event, a snapshot switched in at `snapshotSeq` whose covered
      // events are not deleted yet (keepHistory here; below, deleted by hand as deleteCovered does)
      const log = `locked-pages-${snapshotSeq}`;
      const store = await snapshotAtStore(url, log, snapshotSeq);
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      let client: pg.PoolClient | null = null;
      try {
        await Promise.all(
          Array.from({ length: 10_000 }, (_, i) =>
            store.append({
              seq: i + 1,
              time: 0,
              events: [{ type: 'Set', data: { key: 'k', value: i + 1 } }],
            }),
          ),
        );
        expect(await store.compact()).toMatchObject({ seq: snapshotSeq });
        // when: a catch-up after seq 100 (behind the snapshot) reads on the locked head, in read
        // committed (every page a statement of its own), and between its pages the covered
        // events go, oldest first, in a slice ending inside a page it has not read
        client = await pool.connect();
        const read = await lockedCatchUp(client, log, 100);
        const first = await read.next();
        expect(first.done).toBe(false);
        await admin(url, 'DELETE FROM appendonly.events WHERE log = $1 AND seq <= $2', [log, deletedTo]);
        // then: LOG_COMPACTED (the App reloads from the snapshot), not a corrupt log
        const rest = (async () => {
          for (let page = await read.next(); !page.done; page = await read.next());
        })();
        await expect(rest).rejects.toBeInstanceOf(LogCompactedError);
      } finally {
        await client?.query('ROLLBACK').catch(() => {});
        client?.release();
        await pool.end();
        await store.close();
      }
    },
  );
});
