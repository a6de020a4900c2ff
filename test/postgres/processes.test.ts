import type { AppStats } from 'appendonly';
import type { PostgresStats } from 'appendonly/adapters/postgres';
import { usePostgres } from '../support/postgres';
import { type Acked, ackedPuts, ask, fund, logShape, missing, stateOf, useApps, useWorkers } from './helpers';

/** Real processes on one log: every command is ordered against every other, none decided on a stale state. */
describe('PostgresStore: several processes on one log', () => {
  const server = usePostgres();
  const open = useApps();
  const spawn = useWorkers();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it('three processes increment one counter and move money at once: exact sums, one state, a fourth replays it', async () => {
    // given: five accounts of 1000
    const log = 'bank';
    await fund(open, url, log);
    // when: three processes increment and transfer, 16 in flight each, until each has had 600
    // commands acknowledged
    const workers = [1, 2, 3].map((id) => spawn(url, log, id, 'mixed'));
    await Promise.all(workers.map((w) => w.waitFor(/^ready$/)));
    for (const w of workers) w.send('go');
    await Promise.all(workers.map((w) => w.waitFor(/^ack /, 600)));
    const acked = await Promise.all(workers.map((w) => ask<Acked>(w, 'stop', 'stopped')));
    // each brings itself to the log's head
    const states = await Promise.all(workers.map((w) => ask(w, 'sync', 'state')));
    // then: the counter is exact, no money was made or lost, no account went below zero
    const last = states[2];
    expect(last.counter).toBe(acked.reduce((sum, a) => sum + a.increment, 0));
    const balances = [0, 1, 2, 3, 4].map((i) => last[`acct:${i}`] as number);
    expect(balances.reduce((a, b) => a + b, 0)).toBe(5000);
    for (const b of balances) expect(b).toBeGreaterThanOrEqual(0);
    // every instance ends in the same state, and a fourth opened afterwards replays it
    expect(states[0]).toEqual(last);
    expect(states[1]).toEqual(last);
    const fourth = await open(url, log);
    expect(stateOf(fourth.app)).toEqual(last);
    // the log is dense: no seq lost or taken twice
    const shape = await logShape(url, log);
    expect(shape).toMatchObject({ min: 1, max: shape.n });
    expect(fourth.app.stats().lastSeq).toBe(shape.max);
    // they did race: at least one instance had a conflict
    const stats = await Promise.all(
      workers.map((w) => ask<AppStats & { store: PostgresStats }>(w, 'stats', 'stats')),
    );
    expect(stats.reduce((sum, s) => sum + s.store.conflicts, 0)).toBeGreaterThan(0);
  }, 120_000);

  it('a writer SIGKILLed at a random point mid-append, 10 times over, while two others write: nothing acknowledged is lost, the survivors go on and agree', async () => {
    // given: two writers that write until told to stop, 16 commands in flight each
    const log = 'kill';
    const survivors = [1, 2].map((id) => spawn(url, log, id, 'write'));
    await Promise.all(survivors.map((s) => s.waitFor(/^ack /)));
    // when: ten times, a third writer starts and is SIGKILLed after a random number of
    // acknowledgements and a random delay, with commands in flight (it never stops sending)
    const plan: { acks: number; delayMs: number }[] = [];
    const acked = new Map<string, number>();
    const ackedBy = new Map<number, number>();
    for (let round = 0; round < 10; round++) {
      const id = 10 + round;
      const acks = 1 + Math.floor(Math.random() * 100);
      const delayMs = Math.floor(Math.random() * 30);
      plan.push({ acks, delayMs });
      const victim = spawn(url, log, id, 'write');
      await victim.waitFor(/^ready$/);
      const during = survivors.map((s) => s.lines.length);
      await victim.waitFor(/^ack /, acks); // line 0 is `ready`: at least `acks` acknowledgements
      // the survivors wrote while the victim did
      await Promise.all(survivors.map((s, i) => s.waitFor(/^ack /, during[i])));
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      victim.process.kill('SIGKILL');
      expect(await victim.exited).toBeNull(); // killed, not exited
      const mine = ackedPuts(victim, id);
      for (const [key, value] of mine) acked.set(key, value);
      ackedBy.set(id, mine.size);
      // and they go on after the kill
      const after = survivors.map((s) => s.lines.length);
      await Promise.all(survivors.map((s, i) => s.waitFor(/^ack /, after[i])));
    }
    // then: the survivors stop, each brought to the log's head, and they agree
    const stopped = await Promise.all(survivors.map((s) => ask<Acked>(s, 'stop', 'stopped')));
    survivors.forEach((s, i) => {
      for (const [key, value] of ackedPuts(s, i + 1)) acked.set(key, value);
    });
    const states = await Promise.all(survivors.map((s) => ask(s, 'sync', 'state')));
    expect(states[1]).toEqual(states[0]);
    // a new instance replays that state, and every acknowledged command is in it
    const reader = await open(url, log);
    const state = stateOf(reader.app);
    expect(state).toEqual(states[0]);
    expect({ plan, missing: missing(state, acked) }).toEqual({ plan, missing: [] });
    // nothing else: a survivor's commands all were acknowledged (it stopped), and a victim's
    // unacknowledged ones in the log were among its 16 in flight at the kill
    for (const [key, value] of Object.entries(state)) {
      const [, id, i] = /^w(\d+):(\d+)$/.exec(key)!;
      expect(value).toBe(Number(i));
      const bound = Number(id) < 10 ? stopped[Number(id) - 1].put : ackedBy.get(Number(id))! + 16;
      expect(Number(i)).toBeLessThan(bound);
    }
    // the log is dense: no seq lost or taken twice, the survivors' and victims' commands interleaved
    const shape = await logShape(url, log);
    expect(shape).toMatchObject({ min: 1, max: shape.n });
    expect(reader.app.stats().lastSeq).toBe(shape.max);
  }, 300_000);
});
