import { fixtures } from 'appendonly/testing';
import { admin, usePostgres } from '../support/postgres';
import { useWorkers } from './child/spawn';
import { stateOf, useApps } from './helpers';

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
    const setup = await open(url, log);
    for (let i = 0; i < 5; i++) await setup.app.execute(new fixtures.Put(`acct:${i}`, 1000));
    await setup.app.close();
    const N = 300;
    // when: three processes, each N increments and N transfers, 16 in flight
    const workers = [1, 2, 3].map((id) => spawn([url, log, 'mixed', String(N), String(id)]));
    await Promise.all(workers.map((w) => w.waitFor(/^ready/)));
    for (const w of workers) w.process.stdin.write('go\n');
    await Promise.all(workers.map((w) => w.waitFor(/^done/)));
    // each brings itself to the head with one idempotent write, one after the other
    const states: Record<string, unknown>[] = [];
    for (const w of workers) {
      const from = w.lines.length;
      w.process.stdin.write('sync\n');
      states.push(JSON.parse((await w.waitFor(/^state /, from)).slice('state '.length)));
    }
    // then: the counter is exact, no money was made or lost, no account went below zero
    const last = states[2];
    expect(last.counter).toBe(3 * N);
    const balances = [0, 1, 2, 3, 4].map((i) => last[`acct:${i}`] as number);
    expect(balances.reduce((a, b) => a + b, 0)).toBe(5000);
    for (const b of balances) expect(b).toBeGreaterThanOrEqual(0);
    // every instance ends in the same state, and a fourth opened afterwards replays it
    expect(states[0]).toEqual(last);
    expect(states[1]).toEqual(last);
    const fourth = await open(url, log);
    expect(stateOf(fourth.app)).toEqual(last);
    // the log is dense and ends at the fourth's head
    const { rows } = await admin(
      url,
      'SELECT count(*)::int AS n, max(seq)::int AS max FROM appendonly.events WHERE log = $1',
      [log],
    );
    expect(rows[0].n).toBe(rows[0].max);
    expect(fourth.app.stats().lastSeq).toBe(rows[0].max);
    // they did race: at least one instance had a conflict
    const conflicts = workers.map(
      (w) => JSON.parse(w.lines.find((l) => l.startsWith('done'))!.slice(5)).conflicts,
    );
    expect(conflicts.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThan(0);
  }, 120_000);

  it('a writer killed with SIGKILL mid-append, again and again while two others write, loses nothing acknowledged', async () => {
    // given: two writers that never stop
    const log = 'kill';
    const others = [1, 2].map((id) => spawn([url, log, 'write', '0', String(id)]));
    await Promise.all(others.map((w) => w.waitFor(/^ack 20$/)));
    // when: a third writer is killed with SIGKILL three times, mid-load
    const acked = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const victim = spawn([url, log, 'write', '0', String(10 + round)]);
      await victim.waitFor(new RegExp(`^ack ${30 + round * 40}$`));
      victim.process.kill('SIGKILL');
      await victim.exited;
      for (const line of victim.lines)
        if (line.startsWith('ack ')) acked.add(`w${10 + round}:${line.slice(4)}`);
    }
    const before = others.map((w) => w.lines.length);
    await Promise.all(others.map((w, i) => w.waitFor(/^ack /, before[i])));
    for (const w of others) {
      w.process.kill('SIGKILL');
      await w.exited;
      const id = others.indexOf(w) + 1;
      for (const line of w.lines) if (line.startsWith('ack ')) acked.add(`w${id}:${line.slice(4)}`);
    }
    // then: a new instance replays every acknowledged command, and the log is dense
    const reader = await open(url, log);
    const state = stateOf(reader.app);
    const missing = [...acked].filter((k) => !(k in state));
    expect(missing).toEqual([]);
    expect(acked.size).toBeGreaterThan(150);
    const { rows } = await admin(
      url,
      'SELECT count(*)::int AS n, max(seq)::int AS max FROM appendonly.events WHERE log = $1',
      [log],
    );
    expect(rows[0].n).toBe(rows[0].max);
    // and the others carried on: the log goes on growing from the survivors' last commands
    await reader.app.execute(new fixtures.Put('after', 1));
  }, 120_000);
});
