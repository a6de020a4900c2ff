import * as fs from 'node:fs';
import * as path from 'node:path';
import { killAgainAndAgain, useChildren } from '../support/child';
import { tempDir } from '../support/helpers';

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

describe.each([
  ['aof', (dir: string) => path.join(dir, 'aof')],
  ['sqlite', (dir: string) => path.join(dir, 'app.db')],
] as const)('a durable consumer killed with SIGKILL (%s)', (kind, location) => {
  const spawn = useChildren(WORKER);
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir(`consumer-crash-${kind}`);
  });
  afterEach(() => tmp.cleanup());

  it(`handles every event at least once, in order, none skipped, over ${KILLS} kills while commands flow`, async () => {
    // given: a worker that runs commands and a consumer recording what it handles, fsynced
    const record = path.join(tmp.dir, 'handled.txt');
    const spec = { kind, path: location(tmp.dir), record };
    // when: it is killed at a random moment, again and again, then runs to the end
    const head = await killAgainAndAgain(spawn, (finish) => [JSON.stringify({ ...spec, finish })], KILLS);
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
  });
});
