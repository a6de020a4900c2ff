import * as path from 'node:path';
import { createApp, type EventGroup, type EventStore, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { killAgainAndAgain, useChildren } from '../support/child';
import { tempDir } from '../support/helpers';

const WORKER = path.join(__dirname, 'child', 'reaction-worker.ts');
const KILLS = 10;

describe.each([
  ['aof', (dir: string) => path.join(dir, 'aof')],
  ['sqlite', (dir: string) => path.join(dir, 'app.db')],
] as const)('a reacting consumer killed with SIGKILL (%s)', (kind, location) => {
  const spawn = useChildren(WORKER);
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir(`reaction-crash-${kind}`);
  });
  afterEach(() => tmp.cleanup());

  it(`ends with exactly one reaction per triggering event in the log, over ${KILLS} kills`, async () => {
    // given: a worker running commands and a consumer reacting to each with one command
    const spec = { kind, path: location(tmp.dir) };
    // when: it is killed at a random moment, again and again, then runs to the end
    const head = await killAgainAndAgain(spawn, (finish) => [JSON.stringify({ ...spec, finish })], KILLS);
    // then: the log, read whole, holds one reaction per triggering event, caused by it
    const store: EventStore =
      kind === 'aof' ? new AofStore({ dir: spec.path }) : new SqliteWalStore({ file: spec.path });
    const app = await createApp({ store, logger: silentLogger });
    let groups: readonly EventGroup[];
    try {
      groups = await store.read!(0, head + 1_000);
    } finally {
      await app.close();
    }
    const triggers = new Map<number, string>();
    const reactions = new Map<number, string[]>();
    for (const g of groups)
      g.events.forEach((e, i) => {
        const key = (e.data as { key: string }).key;
        if (key === 'last') triggers.set(g.seq + i, g.ids![i]);
        else {
          const seq = Number(key.slice(2));
          reactions.set(seq, [...(reactions.get(seq) ?? []), String(g.metadata?.causationId)]);
        }
      });
    expect(triggers.size).toBeGreaterThan(100);
    for (const [seq, id] of triggers) {
      const got = reactions.get(seq) ?? [];
      if (got.length !== 1) throw new Error(`seq ${seq} has ${got.length} reactions in the log, not 1`);
      expect(got[0]).toBe(id);
    }
    expect(reactions.size).toBe(triggers.size);
  });
});
