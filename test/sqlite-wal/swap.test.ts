import * as path from 'node:path';
import fc from 'fast-check';
import { type App, createApp, type EventStore, type JsonValue, MemoryStore, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { tempDir } from './helpers';

const { Put, PutMany, Remove, Count, FlushAll } = fixtures;

/** One step of a generated session: a command, or a compaction. */
type Step = { command: object } | { compact: true };

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f');
const value: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.oneof(fc.integer(), fc.string())),
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(key, value).map(([k, v]) => ({ command: new Put(k, v) })) },
  {
    weight: 2,
    arbitrary: fc
      .array(fc.tuple(key, value), { minLength: 1, maxLength: 4 })
      .map((e) => ({ command: new PutMany(e) })),
  },
  {
    weight: 2,
    arbitrary: fc.array(key, { minLength: 1, maxLength: 3 }).map((k) => ({ command: new Remove(k) })),
  },
  {
    weight: 3,
    arbitrary: fc
      .tuple(key, fc.integer({ min: -5, max: 5 }))
      .map(([k, by]) => ({ command: new Count(`n:${k}`, by) })),
  },
  { weight: 1, arbitrary: fc.constant({ command: new FlushAll() }) },
  { weight: 1, arbitrary: fc.constant({ compact: true as const }) },
);

/**
 * Adapter swapping: the same commands, through the same handlers and projections, give the same
 * state and the same sequence numbers on every store, live and after a replay. Only the store
 * binding differs.
 */
describe('the same app on MemoryStore, AofStore and SqliteWalStore', () => {
  it('reaches the same state and sequence numbers on every store, live and replayed', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 8 }),
        async (steps, inFlight) => {
          const { dir, cleanup } = tempDir();
          const stores: Record<string, () => EventStore> = {
            sqlite: () => new SqliteWalStore({ file: path.join(dir, 'app.db'), appendfsync: 'no' }),
            aof: () => new AofStore({ dir: path.join(dir, 'aof'), appendfsync: 'no' }),
          };
          const memory = new MemoryStore();
          try {
            const results: Record<string, { live: unknown; replayed: unknown; seqs: number[] }> = {};
            for (const [name, open] of Object.entries({ ...stores, memory: () => memory })) {
              const app = await createApp({
                ...fixtures.conformanceClasses,
                store: open(),
                logger: silentLogger,
              });
              const seqs = await run(app, steps, inFlight);
              const live = snapshot(app);
              await app.close();
              const reopened = await createApp({
                ...fixtures.conformanceClasses,
                store: open(),
                logger: silentLogger,
              });
              results[name] = { live, replayed: snapshot(reopened), seqs };
              await reopened.close();
            }
            expect(results.sqlite).toEqual(results.memory);
            expect(results.aof).toEqual(results.memory);
            expect(results.memory.replayed).toEqual(results.memory.live);
          } finally {
            cleanup();
          }
        },
      ),
      { numRuns: 15 },
    );
  });
});

/** Runs the steps with up to `inFlight` commands outstanding; returns each command's first seq. */
async function run(app: App, steps: Step[], inFlight: number): Promise<number[]> {
  const seqs: number[] = [];
  let pending: Promise<void>[] = [];
  for (const s of steps) {
    if ('compact' in s) {
      await Promise.all(pending);
      pending = [];
      await app.compact();
      continue;
    }
    const index = seqs.push(0) - 1;
    pending.push(
      app.execute(s.command).then((r) => {
        seqs[index] = r.firstSeq;
      }),
    );
    if (pending.length >= inFlight) {
      await Promise.all(pending);
      pending = [];
    }
  }
  await Promise.all(pending);
  return seqs;
}

function snapshot(app: App): { state: Record<string, JsonValue>; lastSeq: number } {
  return {
    state: Object.fromEntries([...app.state.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
    lastSeq: app.stats().lastSeq,
  };
}
