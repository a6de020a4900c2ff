import * as fs from 'node:fs';
import * as path from 'node:path';
import { type App, createApp, type EventStore, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { tempDir } from '../support/helpers';
import { cli, redisCheckAof } from './helpers';

const { Put, conformanceClasses } = fixtures;

describe.each([
  ['aof', (dir: string) => ({ arg: dir, store: () => new AofStore({ dir }) })],
  [
    'sqlite',
    (dir: string) => ({
      arg: path.join(dir, 'app.db'),
      store: () => new SqliteWalStore({ file: path.join(dir, 'app.db') }),
    }),
  ],
] as const)('appendonly consumers (%s)', (kind, locate) => {
  let tmp: ReturnType<typeof tempDir>;
  let arg: string;
  let newStore: () => EventStore;
  const open = (): Promise<App> =>
    createApp({ ...conformanceClasses, store: newStore(), logger: silentLogger });

  beforeEach(async () => {
    tmp = tempDir(`cli-consumers-${kind}`);
    ({ arg, store: newStore } = locate(tmp.dir));
    // given: 6 commands; consumer "mailer" failed on seqs 3 and 5 (parked), "audit" stopped at seq 4
    const app = await open();
    for (let i = 1; i <= 4; i++) await app.execute(new Put(`k${i}`, i));
    const audit = await app.subscribe('audit', () => {});
    await audit.caughtUp();
    await audit.close();
    for (let i = 5; i <= 6; i++) await app.execute(new Put(`k${i}`, i));
    const mailer = await app.subscribe(
      'mailer',
      (e) => {
        if (e.seq === 3 || e.seq === 5) throw new Error(`smtp down at ${e.seq}`);
      },
      { maxAttempts: 1 },
    );
    await mailer.caughtUp();
    await app.removeConsumer('nobody');
    await app.close();
  });
  afterEach(() => tmp.cleanup());

  it('lists consumers, positions, lag and parked events, as text and --json', () => {
    // when
    const json = cli(['consumers', arg, '--json']);
    const text = cli(['consumers', arg]);
    // then
    expect(json.status).toBe(0);
    const out = JSON.parse(json.stdout) as {
      lastSeq: number;
      consumers: { name: string; position: number; lag: number; parked: { seq: number; error: string }[] }[];
    };
    expect(out.lastSeq).toBe(6);
    expect(out.consumers.map((c) => [c.name, c.position, c.lag, c.parked.map((p) => p.seq)])).toEqual([
      ['audit', 4, 2, []],
      ['mailer', 6, 0, [3, 5]],
    ]);
    expect(out.consumers[1].parked[0].error).toBe('smtp down at 3');
    expect(text.status).toBe(0);
    expect(text.stdout).toMatch(/mailer {2}position 6 {2}lag 0 {2}parked 2/);
    expect(text.stdout).toMatch(/parked seq 3 SET, 1 attempts, .*: smtp down at 3/);
  });

  it('retry hands a parked event to the handler again at the next start; drop forgets one', async () => {
    // when: seq 3 is retried and seq 5 dropped
    const retried = cli(['consumers', arg, 'retry', 'mailer', '3', '--yes']);
    const dropped = cli(['consumers', arg, 'drop', 'mailer', '5', '--yes']);
    expect(retried.status).toBe(0);
    expect(retried.stdout).toMatch(/marked for retry/);
    expect(dropped.status).toBe(0);
    const app = await open();
    const handled: number[] = [];
    const mailer = await app.subscribe('mailer', (e) => void handled.push(e.seq));
    await mailer.caughtUp();
    await app.close();
    // then: seq 3 was handed again, once; nothing is parked any more
    expect(handled).toEqual([3]);
    const out = JSON.parse(cli(['consumers', arg, '--json']).stdout) as {
      consumers: { name: string; parked: unknown[] }[];
    };
    expect(out.consumers.find((c) => c.name === 'mailer')!.parked).toEqual([]);
  });

  it('refuses without --yes off a terminal, an unknown consumer, an unknown seq, and a running app', async () => {
    expect(cli(['consumers', arg, 'drop', 'mailer', '3']).status).toBe(2);
    expect(cli(['consumers', arg, 'drop', 'nobody', '3', '--yes']).stderr).toMatch(/no consumer "nobody"/);
    expect(cli(['consumers', arg, 'drop', 'mailer', '4', '--yes']).stderr).toMatch(
      /no parked event at seq 4/,
    );
    const app = await open();
    try {
      const r = cli(['consumers', arg, 'drop', 'mailer', '3', '--yes']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/refusing to drop parked events/);
    } finally {
      await app.close();
    }
  });

  it('says what holds compaction back, and which consumers are stale', async () => {
    // given: "audit" at seq 4, "mailer" at 6, "lost" at 0 (5 more commands: seq 11), a
    // compaction with maxConsumerLag 8: "lost" is 10 behind, stale; "audit" holds seqs 5..10
    const app = await createApp({
      ...conformanceClasses,
      store:
        kind === 'aof'
          ? new AofStore({ dir: tmp.dir, maxConsumerLag: 8 })
          : new SqliteWalStore({ file: arg, maxConsumerLag: 8 }),
      logger: silentLogger,
    });
    await app.subscribe('lost', () => {}, { from: { after: 0 } }).then((s) => s.close());
    for (let i = 7; i <= 10; i++) await app.execute(new Put(`k${i}`, i));
    // (stored at 0: it was closed before it could handle anything new)
    const records = await (app as unknown as { store: EventStore }).store.loadConsumers!();
    await (app as unknown as { store: EventStore }).store.saveConsumer!({
      ...records.find((r) => r.name === 'lost')!,
      position: 0,
    });
    await app.compact();
    await app.close();
    // when
    const json = JSON.parse(cli(['consumers', arg, '--json']).stdout) as {
      consumers: { name: string; stale?: { seq: number; lag: number } }[];
      retention: unknown;
    };
    const text = cli(['consumers', arg]).stdout;
    // then
    expect(json.consumers.map((c) => [c.name, c.stale?.seq, c.stale?.lag])).toEqual([
      ['audit', undefined, undefined],
      ['lost', 10, 10],
      ['mailer', undefined, undefined],
    ]);
    expect(json.retention).toEqual({
      seq: 10,
      heldBy: { name: 'audit', position: 4 },
      keptFrom: 5,
      keptEvents: 6,
      stale: ['lost'],
    });
    expect(text).toMatch(
      /lost {2}position 0 {2}lag 10 {2}parked 0 {2}STALE \(a compaction at seq 10 found it 10 events behind/,
    );
    expect(text).toMatch(
      /compaction: held by "audit" at seq 4: 6 events below the snapshot \(seq 10\) kept from seq 5/,
    );
    if (kind === 'aof') {
      // and: the kept files are Redis history files; redis-check-aof passes the log
      const manifest = path.join(tmp.dir, 'appendonlydir', 'appendonly.aof.manifest');
      expect(fs.readFileSync(manifest, 'utf8')).toMatch(/ type h startseq 1\n/);
      expect(redisCheckAof([manifest]).stdout).toMatch(/is valid/);
    }
  });

  if (kind === 'aof') {
    it('leaves the log valid for redis-check-aof, the consumers file beside it', () => {
      const r = redisCheckAof([path.join(tmp.dir, 'appendonlydir', 'appendonly.aof.manifest')]);
      expect(r.stdout).toMatch(/is valid/);
    });
  }
});
