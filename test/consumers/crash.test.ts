import * as fs from 'node:fs';
import * as path from 'node:path';
import { useChildren } from '../support/child';
import { tempDir } from '../support/helpers';
import { usePostgres } from '../support/postgres';

const WORKER = path.join(__dirname, 'child', 'consumer-worker.ts');
const KILLS = 10;

/** The record file as runs: the seqs each process handed its handler, in the order handled. */
function runsOf(record: string): number[][] {
  const runs: number[][] = [];
  for (const line of fs.readFileSync(record, 'utf8').split('\n')) {
    if (line === 'R') runs.push([]);
    else if (line !== '') runs[runs.length - 1].push(Number(line));
  }
  return runs;
}

/** Where each kind's log is: a folder, a file, a database of the suite's PostgreSQL server. */
type Locate = (dir: string) => { path: string; log?: string };

let postgresUrl = '';
let logs = 0;

describe.each([
  ['aof', ((dir) => ({ path: path.join(dir, 'aof') })) as Locate],
  ['sqlite', ((dir) => ({ path: path.join(dir, 'app.db') })) as Locate],
  ['postgres', ((_dir) => ({ path: postgresUrl, log: `consumer-crash-${++logs}` })) as Locate],
] as const)('a durable consumer killed with SIGKILL (%s)', (kind, location) => {
  const spawn = useChildren(WORKER);
  if (kind === 'postgres') {
    const server = usePostgres();
    beforeAll(async () => {
      postgresUrl = await server().createDatabase();
    }, 120_000);
  }
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir(`consumer-crash-${kind}`);
  });
  afterEach(() => tmp.cleanup());

  it(`handles every event at least once, in order, none skipped, over ${KILLS} kills while commands flow and the log is compacted`, async () => {
    // given: a worker that runs commands, compacts one compaction after another, and runs a
    // consumer recording what it handles, fsynced
    const record = path.join(tmp.dir, 'handled.txt');
    const spec = { kind, ...location(tmp.dir), record };
    // when: it is killed at a random moment (in a command, a compaction, a checkpoint), again
    // and again, then runs to the end
    for (let k = 0; k < KILLS; k++) {
      const child = spawn([JSON.stringify({ ...spec, finish: false })]);
      await child.waitFor(/^READY$/);
      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 150)));
      child.process.kill('SIGKILL');
      await child.exited;
    }
    const last = spawn([JSON.stringify({ ...spec, finish: true })]);
    const kept = await last.waitFor(/^KEPT \d+ \S+$/);
    const done = await last.waitFor(/^DONE \d+$/);
    expect(await last.exited).toBe(0);
    const head = Number(done.split(' ')[1]);
    // then: each run handled consecutive seqs from where it resumed...
    const runs = runsOf(record);
    expect(runs).toHaveLength(KILLS + 1);
    let handledUpTo = 0;
    for (const run of runs) {
      if (run.length === 0) continue;
      // ...resuming at or before the event after the last one handled (never a gap)...
      expect(run[0]).toBeLessThanOrEqual(handledUpTo + 1);
      run.forEach((seq, i) => {
        if (i > 0 && seq !== run[i - 1] + 1) throw new Error(`run skipped from ${run[i - 1]} to ${seq}`);
      });
      handledUpTo = Math.max(handledUpTo, run[run.length - 1]);
    }
    // ...and every durable event was handled, the last run up to the head
    expect(handledUpTo).toBe(head);
    expect(runs[runs.length - 1][runs[runs.length - 1].length - 1]).toBe(head);
    const seen = new Set(runs.flat());
    for (let seq = 1; seq <= head; seq++) if (!seen.has(seq)) throw new Error(`seq ${seq} was never handled`);
    expect(head).toBeGreaterThan(100);
    // and: the last compaction, run while the consumer was stopped behind it, kept its events
    const [, events, holder] = kept.split(' ');
    expect(holder).toBe('recorder');
    expect(Number(events)).toBeGreaterThan(0);
  });
});
