import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  type AppliedEvent,
  CommandHandler,
  createApp,
  currentEventVersion,
  defineEvent,
  type EventMeta,
  type EventStore,
  legacyEventId,
  On,
  Projection,
  type ProjectionState,
  silentLogger,
  upcast,
} from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures, replayAll } from 'appendonly/testing';
import { spawnChild } from '../support/child';

/*
 * Event versions, upcasters and metadata end to end, on real files: a log written by release 1
 * of an app (in a child process, with release 1's definition) read by release 3, whose
 * definition upcasts 1 → 2 → 3; a version newer than the code refused; metadata through
 * execute → projection → replay → events$; an AOF written before envelopes still loads.
 */

// Release 3 of the bank's event: 2 added `currency`, 3 renamed `amount` to `cents`.
const Deposited = defineEvent<{ account: string; cents: number; currency: string }>('Deposited', {
  version: 3,
  upcast: {
    1: (old) => ({ ...old, currency: 'EUR' }),
    2: ({ amount, ...rest }) => ({ ...rest, cents: (amount as number) * 100 }),
  },
});

class Deposit {
  constructor(
    readonly account: string,
    readonly cents: number,
  ) {}
}

@CommandHandler(Deposit)
class DepositHandler {
  execute(c: Deposit) {
    return [Deposited({ account: c.account, cents: c.cents, currency: 'USD' })];
  }
}

/** What the projection saw: each event's data and meta, live and on replay. */
const seen: { data: typeof Deposited.Event.data; meta: EventMeta }[] = [];

@Projection()
class Balances {
  @On(Deposited) deposited(e: typeof Deposited.Event, kv: ProjectionState, meta: EventMeta) {
    seen.push({ data: e.data, meta });
    kv.set(`cents:${e.data.account}`, ((kv.get(`cents:${e.data.account}`) as number) ?? 0) + e.data.cents);
  }
}

const bank = { handlers: [DepositHandler], projections: [Balances], logger: silentLogger };

/** Runs release 1 in its own process: `count` deposits of 1, 2, … to `where`. */
async function writeWithRelease1(kind: 'aof' | 'sqlite', where: string, count: number): Promise<void> {
  const child = spawnChild(path.join(__dirname, 'child/bank-v1.ts'), [kind, where, String(count)]);
  const line = await child.waitFor(/^(done|error) /);
  expect(line).toBe(`done ${count}`);
  await child.exited;
}

const stores: [string, 'aof' | 'sqlite', (where: string) => EventStore][] = [
  ['AOF', 'aof', (dir) => new AofStore({ dir, appendfsync: 'always' })],
  ['SQLite', 'sqlite', (file) => new SqliteWalStore({ file })],
];

describe('event versions, upcasters, metadata', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'appendonly-envelope-'));
    seen.length = 0;
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('upcast() chains the upcasters from the logged version to the current one', () => {
    // given Deposited at version 3, when data of versions 1, 2 and 3 are upcast
    // then each comes out at version 3; the current version is returned as it is
    expect(currentEventVersion('Deposited')).toBe(3);
    expect(upcast('Deposited', 1, { account: 'a', amount: 2 })).toEqual({
      account: 'a',
      cents: 200,
      currency: 'EUR',
    });
    expect(upcast('Deposited', 2, { account: 'a', amount: 2, currency: 'GBP' })).toEqual({
      account: 'a',
      cents: 200,
      currency: 'GBP',
    });
    const v3 = { account: 'a', cents: 5, currency: 'USD' };
    expect(upcast('Deposited', 3, v3)).toBe(v3);
    expect(() => upcast('Deposited', 4, v3, 'seq 9, x.aof at byte offset 12')).toThrow(
      expect.objectContaining({
        code: 'EVENT_VERSION',
        message: expect.stringMatching(
          /"Deposited" at version 4 \(seq 9, x\.aof at byte offset 12\).*up to version 3/,
        ),
      }),
    );
  });

  it('defineEvent refuses a chain with a missing step and keeps the plain form', () => {
    // when a version has no upcaster from an older one, then defining it throws naming the step
    expect(() => defineEvent('Gappy', { version: 3, upcast: { 1: (o) => o } })).toThrow(
      /no upcaster from version 2/,
    );
    expect(() => defineEvent('Beyond', { version: 2, upcast: { 1: (o) => o, 2: (o) => o } })).toThrow(
      /upcast key 2/,
    );
    // and the form without options is version 1
    expect(defineEvent<{ a: number }>('Plain').version).toBe(1);
  });

  it.each(stores)(
    '%s: a log written by release 1 replays upcast 1 → 2 → 3; new events log at 3; old ones are never rewritten',
    async (_name, kind, open) => {
      // given a log of three deposits written by release 1 (Deposited unversioned)
      const where = kind === 'aof' ? path.join(root, 'data') : path.join(root, 'bank.db');
      await writeWithRelease1(kind, where, 3);
      const logged = await replayAll(open(where));
      // when release 3 opens it and deposits again
      const app = await createApp({ ...bank, store: open(where) });
      const reported: AppliedEvent[] = [];
      app.events$.subscribe((e) => reported.push(e));
      await app.execute(new Deposit('alice', 7), { metadata: { correlationId: 'r-42' } });
      await app.close();
      // then the projection got release 1's events at version 3: EUR, amounts in cents
      expect(seen.slice(0, 3).map((s) => s.data)).toEqual([
        { account: 'alice', cents: 100, currency: 'EUR' },
        { account: 'alice', cents: 200, currency: 'EUR' },
        { account: 'alice', cents: 300, currency: 'EUR' },
      ]);
      expect(seen.slice(0, 3).map((s) => s.meta.version)).toEqual([3, 3, 3]);
      // and release 1's events had ids of their own (logged by release 1, which had envelopes)
      expect(seen[0].meta.id).toBe((logged[0] as { ids?: string[] }).ids?.[0]);
      // and the new event was reported, and is logged, at version 3 with its metadata
      expect(reported).toEqual([
        expect.objectContaining({
          seq: 4,
          type: 'Deposited',
          version: 3,
          data: { account: 'alice', cents: 7, currency: 'USD' },
          metadata: { correlationId: 'r-42' },
        }),
      ]);
      const after = await replayAll(open(where));
      expect(after.slice(0, 3)).toEqual(logged); // the old records as they were: versions absent (1)
      expect(after[3]).toEqual(
        expect.objectContaining({
          seq: 4,
          versions: [3],
          ids: [reported[0].id],
          metadata: { correlationId: 'r-42' },
        }),
      );
      // and a replay by release 3 gives the same state and meta again
      seen.length = 0;
      const again = await createApp({ ...bank, store: open(where) });
      expect(again.state.get('cents:alice')).toBe(607);
      expect(seen[3].meta).toEqual({
        seq: 4,
        time: reported[0].time,
        id: reported[0].id,
        version: 3,
        metadata: { correlationId: 'r-42' },
      });
      await again.close();
    },
  );

  it.each(stores)(
    '%s: an event of a version newer than the code knows is refused, naming type, version and position',
    async (_name, kind, open) => {
      // given a log holding Deposited at version 4 (a later release wrote it)
      const where = kind === 'aof' ? path.join(root, 'data') : path.join(root, 'bank.db');
      const writer = open(where);
      await replayAll(writer); // opens and closes: the location exists
      const store = open(where);
      await store.open({
        snapshots: {
          takeSnapshot: () => {
            throw new Error('no');
          },
        },
        logger: silentLogger,
        clock: { now: Date.now },
      });
      await store.replay({ snapshot() {}, entry() {}, group() {}, set() {} });
      await store.append({
        seq: 1,
        time: 1,
        events: [fixtures.Counted({ key: 'k', by: 1 })],
        ids: [legacyEventId(1)],
      });
      await store.append({
        seq: 2,
        time: 2,
        events: [{ type: 'Deposited', data: { account: 'a', pence: 1 } }],
        ids: [legacyEventId(2)],
        versions: [4],
      });
      await store.close();
      // when release 3 opens it, then it refuses with EVENT_VERSION, naming type, version and where
      await expect(
        createApp({
          ...bank,
          handlers: [...bank.handlers, ...fixtures.conformanceClasses.handlers],
          projections: [Balances, ...fixtures.conformanceClasses.projections],
          store: open(where),
        }),
      ).rejects.toMatchObject({
        code: 'EVENT_VERSION',
        type: 'Deposited',
        version: 4,
        known: 3,
        message: expect.stringMatching(
          kind === 'aof' ? /seq 2, appendonly\.aof\.1\.incr\.aof at byte offset \d+/ : /seq 2/,
        ),
      });
    },
  );

  it('execute refuses metadata that is not a JSON object, and applies nothing', async () => {
    // given an app
    const app = await createApp({ ...bank, store: new AofStore({ dir: path.join(root, 'data') }) });
    // when metadata holds a Date, or is an array, then execute rejects with INVALID_EVENT
    await expect(
      app.execute(new Deposit('a', 1), { metadata: { at: new Date() } as never }),
    ).rejects.toMatchObject({
      code: 'INVALID_EVENT',
      message: expect.stringContaining('metadata.at is a Date'),
    });
    await expect(app.execute(new Deposit('a', 1), { metadata: [1] as never })).rejects.toMatchObject({
      code: 'INVALID_EVENT',
    });
    expect(app.stats().lastSeq).toBe(0);
    await app.close();
  });

  it('an AOF written before envelopes loads: version 1, ids derived from the seq, time from #TS', async () => {
    // given an incr file as appendonly wrote it before envelopes: #TS, SET, a MULTI of a SET and Counted
    const dir = path.join(root, 'data');
    const logDir = path.join(dir, 'appendonlydir');
    fs.mkdirSync(logDir, { recursive: true });
    const { crc32 } = require('node:zlib') as { crc32(b: Buffer): number };
    const group = (s: string) =>
      `${s}#CRC:${(crc32(Buffer.from(s, 'latin1')) >>> 0).toString(16).padStart(8, '0')}\r\n`;
    const body =
      group('#TS:1700000000\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n') +
      group(
        '*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$7\r\nCounted\r\n$18\r\n{"key":"n","by":5}\r\n*1\r\n$4\r\nEXEC\r\n',
      );
    fs.writeFileSync(path.join(logDir, 'appendonly.aof.1.incr.aof'), body, 'latin1');
    fs.writeFileSync(
      path.join(logDir, 'appendonly.aof.manifest'),
      'file appendonly.aof.1.incr.aof seq 1 type i\n',
    );
    // when an app opens it and a listener follows a later command
    const app = await createApp({
      ...fixtures.conformanceClasses,
      store: new AofStore({ dir }),
      logger: silentLogger,
    });
    // then the state is whole and the log's groups have no envelope
    expect(Object.fromEntries(app.state.entries())).toEqual({ a: 1, b: 2, n: 5 });
    await app.close();
    const records = await replayAll(new AofStore({ dir }));
    expect(records).toEqual([
      {
        kind: 'group',
        seq: 1,
        time: 1_700_000_000_000,
        events: [{ type: 'SET', data: { key: 'a', value: 1 } }],
      },
      {
        kind: 'group',
        seq: 2,
        time: 1_700_000_000_000,
        events: [
          { type: 'SET', data: { key: 'b', value: 2 } },
          { type: 'Counted', data: { key: 'n', by: 5 } },
        ],
      },
    ]);
    expect(legacyEventId(3)).toBe('00000000-0000-8000-8000-000000000003');
  });

  it('redis-check-aof accepts a log with envelopes: metadata with CRLF, versions, MULTI, after compaction', async () => {
    // given an AOF with every shape of envelope
    const dir = path.join(root, 'data');
    const app = await createApp({
      ...bank,
      store: new AofStore({ dir, appendfsync: 'always', aofTimestamps: true }),
    });
    await app.execute(new Deposit('a', 1), {
      metadata: { note: 'a\r\n*1\r\n$4\r\nEXEC\r\n', big: 'x'.repeat(5000) },
    });
    await app.execute(new Deposit('b', 2));
    await app.compact();
    await app.execute(new Deposit('c', 3), {
      metadata: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    await app.close();
    // when the real redis-check-aof checks the manifest, then it is valid
    const r = spawnSync('redis-check-aof', [path.join(dir, 'appendonlydir', 'appendonly.aof.manifest')], {
      encoding: 'utf8',
    });
    expect(r.error).toBeUndefined();
    expect(`${r.stdout}${r.stderr}`).toMatch(/is valid/);
    expect(r.status).toBe(0);
    // and no '#' line is longer than redis-check-aof's 1,024 bytes: the envelope is in the RESP records
    const incr = fs.readdirSync(path.join(dir, 'appendonlydir')).filter((f) => f.endsWith('.incr.aof'));
    for (const f of incr)
      for (const line of fs.readFileSync(path.join(dir, 'appendonlydir', f), 'latin1').split('\r\n'))
        if (line.startsWith('#')) expect(line.length).toBeLessThan(1024);
  });
});
