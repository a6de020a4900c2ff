import * as path from 'node:path';
import { type Child, spawnWriter } from './child/spawn';
import { openApp, tempDir } from './helpers';

/**
 * SIGKILL under `always`: every command the child saw acknowledged must be in the log, and the
 * log must load. Kill points are spread over the run, including during compactions.
 */
describe('SqliteWalStore always: killed with SIGKILL', () => {
  let cleanup: () => void;
  let dir: string;
  const children: Child[] = [];
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    cleanup();
  });

  it.each([
    ['while writing', undefined, 150],
    ['while writing and compacting', '500', 700],
    ['while writing and compacting, late', '300', 2500],
  ])('loses no acknowledged command when killed %s', async (_, compactEvery, killAfterAcks) => {
    // given: a child writing 20,000 commands, 16 in flight
    const file = path.join(dir, 'app.db');
    const args = [file, 'always', 'write', '20000', ...(compactEvery ? [compactEvery] : [])];
    const child = spawnWriter(args);
    children.push(child);
    // when: it is killed after a number of acknowledgements
    await child.waitFor(new RegExp(`^ack ${killAfterAcks}$`));
    child.process.kill('SIGKILL');
    await child.exited;
    // then: every acknowledged key is there, with its value
    const acked = child.lines.filter((l) => l.startsWith('ack ')).map((l) => Number(l.slice(4)));
    expect(acked.length).toBeGreaterThan(killAfterAcks / 2);
    const { app } = await openApp({ file, appendfsync: 'always' });
    for (const i of acked) expect(app.state.get(`k${i}`)).toBe(i);
    // and: the log holds no gap: its keys are k0…k(lastSeq-1), one event per command
    const last = app.stats().lastSeq;
    expect(app.state.size).toBe(last);
    for (let i = 0; i < last; i++) expect(app.state.get(`k${i}`)).toBe(i);
    await app.close();
  });
});
