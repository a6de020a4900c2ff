import 'reflect-metadata';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type App, createApp, type EventStore, type JsonValue, MemoryStore, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import fc from 'fast-check';

const { Count, Explode, FlushAll, Put, PutMany, Remove, conformanceClasses } = fixtures;

/** One step of a random history: a command, a compaction, or a close and reopen. */
type Step =
  | { kind: 'put'; key: string; value: JsonValue }
  | { kind: 'putMany'; entries: [string, JsonValue][] }
  | { kind: 'remove'; keys: string[] }
  | { kind: 'flush' }
  | { kind: 'count'; key: string; by: number }
  | { kind: 'explode'; key: string }
  | { kind: 'compact' }
  | { kind: 'reopen' };

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'n');
const value: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.integer(),
  fc.string(),
  fc.boolean(),
  fc.constant(null),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 3 }),
);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('put' as const), key, value }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('putMany' as const),
      entries: fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('remove' as const),
      keys: fc.array(key, { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('flush' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('count' as const),
      key: fc.constant('counter'),
      by: fc.integer({ min: -5, max: 5 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('explode' as const), key }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('compact' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const) }) },
);

/** The model: a plain Map fed the same steps. */
function applyToModel(model: Map<string, JsonValue>, s: Step): void {
  switch (s.kind) {
    case 'put':
      model.set(s.key, s.value);
      break;
    case 'putMany':
      for (const [k, v] of s.entries) model.set(k, v);
      break;
    case 'remove':
      for (const k of s.keys) model.delete(k);
      break;
    case 'flush':
      model.clear();
      break;
    case 'count':
      model.set(s.key, ((model.get(s.key) as number | undefined) ?? 0) + s.by);
      break;
    default:
      break; // explode is refused; compact and reopen change nothing
  }
}

async function applyToApp(app: App, s: Step): Promise<void> {
  switch (s.kind) {
    case 'put':
      await app.execute(new Put(s.key, s.value));
      break;
    case 'putMany':
      await app.execute(new PutMany(s.entries));
      break;
    case 'remove':
      await app.execute(new Remove(s.keys));
      break;
    case 'flush':
      await app.execute(new FlushAll());
      break;
    case 'count':
      await app.execute(new Count(s.key, s.by));
      break;
    case 'explode':
      await expect(app.execute(new Explode(s.key))).rejects.toThrow(/projection refused/);
      break;
    case 'compact':
      await app.compact();
      break;
    case 'reopen':
      break;
  }
}

interface Location {
  open(): EventStore;
  cleanup(): void;
}

const stores: [string, () => Location][] = [
  [
    'MemoryStore',
    () => {
      const store = new MemoryStore();
      return { open: () => store, cleanup: () => {} };
    },
  ],
  [
    'SqliteWalStore',
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-model-'));
      return {
        open: () => new SqliteWalStore({ file: path.join(dir, 'app.db'), appendfsync: 'no' }),
        cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
      };
    },
  ],
  [
    'AofStore',
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-model-'));
      return {
        open: () => new AofStore({ dir, appendfsync: 'no' }),
        cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
      };
    },
  ],
];

const runs = process.env.APPENDONLY_SOAK ? 1000 : 100;

describe.each(stores)('model-based: %s equals a plain Map under random histories', (_name, location) => {
  it('after every step, and after every reopen', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
        const where = location();
        const model = new Map<string, JsonValue>();
        let app = await createApp({ ...conformanceClasses, store: where.open(), logger: silentLogger });
        try {
          for (const s of steps) {
            await applyToApp(app, s);
            applyToModel(model, s);
            if (s.kind === 'reopen') {
              await app.close();
              app = await createApp({ ...conformanceClasses, store: where.open(), logger: silentLogger });
            }
            expect(Object.fromEntries(app.state.entries())).toEqual(Object.fromEntries(model));
          }
          await app.close();
          app = await createApp({ ...conformanceClasses, store: where.open(), logger: silentLogger });
          expect(Object.fromEntries(app.state.entries())).toEqual(Object.fromEntries(model));
        } finally {
          await app.close();
          where.cleanup();
        }
      }),
      { numRuns: runs },
    );
  });
});
