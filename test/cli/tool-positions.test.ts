import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { type App, createApp, type EventStore, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { tempDir } from '../support/helpers';
import { cli } from './helpers';

const { Put, PutMany, FlushAll, conformanceClasses } = fixtures;

/** A consumer's record as `appendonly consumers --json` lists it. */
interface Listed {
  readonly name: string;
  readonly position: number;
  readonly parked: readonly { readonly seq: number }[];
}

function listed(arg: string): { lastSeq: number; consumers: [string, number, number[]][] } {
  const r = cli(['consumers', arg, '--json']);
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout) as { lastSeq: number; consumers: Listed[] };
  return {
    lastSeq: out.lastSeq,
    consumers: out.consumers.map((c) => [c.name, c.position, c.parked.map((p) => p.seq)]),
  };
}

describe.each([
  ['aof', (dir: string) => ({ arg: dir, store: () => new AofStore({ dir, appendfsync: 'always' }) })],
  [
    'sqlite',
    (dir: string) => ({
      arg: path.join(dir, 'app.db'),
      store: () => new SqliteWalStore({ file: path.join(dir, 'app.db'), appendfsync: 'always' }),
    }),
  ],
] as const)('the tools carry consumers’ positions (%s)', (kind, locate) => {
  let tmp: ReturnType<typeof tempDir>;
  let arg: string;
  let newStore: () => EventStore;
  const open = (): Promise<App> =>
    createApp({ ...conformanceClasses, store: newStore(), logger: silentLogger });

  /** Subscribes `name` (stored: resumes), returns the seqs and types it was handed up to caught up. */
  async function resume(app: App, name: string): Promise<string[]> {
    const handled: string[] = [];
    const c = await app.subscribe(name, (e) => void handled.push(`${e.seq}:${e.type}`));
    await c.caughtUp();
    await c.close();
    return handled;
  }

  beforeEach(async () => {
    tmp = tempDir(`cli-toolpos-${kind}`);
    ({ arg, store: newStore } = locate(tmp.dir));
    // given: seq 1-2 SET, seq 3 FLUSHALL, seq 4-6 SET; "behind" handled up to seq 2; "ender" is
    // at the end (seq 6) with seqs 3 and 5 parked
    const app = await open();
    await app.execute(new Put('a', 1));
    await app.execute(new Put('b', 2));
    const behind = await app.subscribe('behind', () => {});
    await behind.caughtUp();
    await behind.close();
    await app.execute(new FlushAll());
    for (const k of ['c', 'd', 'e']) await app.execute(new Put(k, k));
    const ender = await app.subscribe(
      'ender',
      (e) => {
        if (e.seq === 3 || e.seq === 5) throw new Error(`down at ${e.seq}`);
      },
      { maxAttempts: 1 },
    );
    await ender.caughtUp();
    await ender.close();
    await app.close();
    expect(listed(arg)).toEqual({
      lastSeq: 6,
      consumers: [
        ['behind', 2, []],
        ['ender', 6, [3, 5]],
      ],
    });
  });
  afterEach(() => tmp.cleanup());

  it('truncate clamps a position beyond the new end, drops parked events after it, says so', async () => {
    // when: the log is cut after seq 4
    const r = cli(['truncate', arg, '--to-seq', '4', '--yes']);
    // then: "ender" is clamped to 4 and loses parked seq 5; "behind" is untouched
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('consumer "ender": position moved from seq 6 to seq 4');
    expect(r.stdout).toContain('consumer "ender": parked event seq 5 (SET) dropped');
    expect(r.stdout).not.toContain('consumer "behind"');
    expect(listed(arg)).toEqual({
      lastSeq: 4,
      consumers: [
        ['behind', 2, []],
        ['ender', 4, [3]],
      ],
    });
    // then: both open without error, "behind" resumes after seq 2, and a new event reaches both
    const app = await open();
    try {
      expect(await resume(app, 'behind')).toEqual(['3:FLUSHALL', '4:SET']);
      expect(await resume(app, 'ender')).toEqual([]);
      await app.execute(new Put('f', 'f'));
      expect(await resume(app, 'behind')).toEqual(['5:SET']);
      expect(await resume(app, 'ender')).toEqual(['5:SET']);
    } finally {
      await app.close();
    }
  });

  it('truncate that leaves every position inside the log changes none', () => {
    // when: the cut is after every position ("ender" is at 6; nothing to cut, the log ends there)
    const r = cli(['truncate', arg, '--to-seq', '6', '--yes']);
    // then
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('consumer "');
    expect(listed(arg).consumers).toEqual([
      ['behind', 2, []],
      ['ender', 6, [3, 5]],
    ]);
  });

  it('convert carries every record, unchanged, into the other store kind', async () => {
    // when: the log is converted to the other kind (AOF → SQLite, SQLite → AOF)
    const to = kind === 'aof' ? path.join(tmp.dir, 'copy.db') : path.join(tmp.dir, 'copy');
    const r = cli(['convert', arg, to, '--yes']);
    // then: both records are in the target's consumer storage, at the same seqs
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('consumer "behind": carried at position seq 2, 0 parked events');
    expect(r.stdout).toContain('consumer "ender": carried at position seq 6, 2 parked events');
    expect(listed(to)).toEqual({
      lastSeq: 6,
      consumers: [
        ['behind', 2, []],
        ['ender', 6, [3, 5]],
      ],
    });
    // then: on the target, "behind" resumes after seq 2 and "ender" at the end
    const app = await createApp({
      ...conformanceClasses,
      store:
        kind === 'aof'
          ? new SqliteWalStore({ file: to, appendfsync: 'always' })
          : new AofStore({ dir: to, appendfsync: 'always' }),
      logger: silentLogger,
    });
    try {
      expect(await resume(app, 'behind')).toEqual(['3:FLUSHALL', '4:SET', '5:SET', '6:SET']);
      expect(await resume(app, 'ender')).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('check --fix cutting a torn command clamps a position beyond the new end', async () => {
    // given: a two-event command at seq 7-8 that "ender" handled, then torn (its last event lost)
    const app = await open();
    await app.execute(
      new PutMany([
        ['x', 1],
        ['y', 2],
      ]),
    );
    expect(await resume(app, 'ender')).toEqual(['7:SET', '8:SET']);
    await app.close();
    if (kind === 'aof') {
      const incr = path.join(tmp.dir, 'appendonlydir', 'appendonly.aof.1.incr.aof');
      fs.truncateSync(incr, fs.statSync(incr).size - 5);
    } else {
      const db = new Database(arg);
      db.prepare('DELETE FROM events WHERE seq = 8').run();
      db.close();
    }
    // when
    const r = cli(['check', arg, '--fix', '--yes']);
    // then: the log ends at seq 6 again; "ender" is clamped there, "behind" untouched
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('consumer "ender": position moved from seq 8 to seq 6');
    expect(r.stdout).not.toContain('consumer "behind"');
    expect(listed(arg)).toEqual({
      lastSeq: 6,
      consumers: [
        ['behind', 2, []],
        ['ender', 6, [3, 5]],
      ],
    });
    // then: both resume without error, and the next event (seq 7 again) reaches "ender"
    const again = await open();
    try {
      expect(await resume(again, 'behind')).toEqual(['3:FLUSHALL', '4:SET', '5:SET', '6:SET']);
      await again.execute(new Put('z', 3));
      expect(await resume(again, 'ender')).toEqual(['7:SET']);
    } finally {
      await again.close();
    }
  });

  if (kind === 'sqlite') {
    it('a log cut behind the tools’ back: the consumer beyond its end fails at open, naming itself', async () => {
      // given: the last event deleted by hand (no tool clamped "ender", at seq 6)
      const db = new Database(arg);
      db.prepare('DELETE FROM events WHERE seq = 6').run();
      db.close();
      // when / then: "ender" is refused, never resumed past events it has not seen; "behind" runs
      const app = await open();
      try {
        await expect(app.subscribe('ender', () => {})).rejects.toThrow(
          /consumer "ender": its stored position is seq 6, beyond the end of the log \(seq 5\)/,
        );
        expect(await resume(app, 'behind')).toEqual(['3:FLUSHALL', '4:SET', '5:SET']);
      } finally {
        await app.close();
      }
    });
  }

  if (kind === 'aof') {
    it('strip maps positions and parked seqs through the renumbering, drops a stripped parked event', async () => {
      // when: the FLUSHALL at seq 3 is stripped (seq 4-6 become 3-5)
      const r = cli(['strip', arg, '--type', 'FLUSHALL', '--yes']);
      // then
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('consumer "ender": position moved from seq 6 to seq 5');
      expect(r.stdout).toContain('consumer "ender": parked event seq 3 (FLUSHALL) dropped: it was stripped');
      expect(r.stdout).toContain('consumer "ender": parked event seq 5 (SET) is now seq 4');
      expect(r.stdout).not.toContain('consumer "behind"');
      expect(listed(arg)).toEqual({
        lastSeq: 5,
        consumers: [
          ['behind', 2, []],
          ['ender', 5, [4]],
        ],
      });
      // then: "behind" gets exactly the events it had not handled, "ender" none, and both the next
      const app = await open();
      try {
        expect(await resume(app, 'behind')).toEqual(['3:SET', '4:SET', '5:SET']);
        expect(await resume(app, 'ender')).toEqual([]);
        await app.execute(new Put('f', 'f'));
        expect(await resume(app, 'ender')).toEqual(['6:SET']);
      } finally {
        await app.close();
      }
    });

    it('the backup of a truncate holds the consumers file as it was', () => {
      // when
      cli(['truncate', arg, '--to-seq', '4', '--yes']);
      // then
      const backup = fs.readdirSync(tmp.dir).find((n) => n.includes('.backup-'))!;
      const saved = JSON.parse(
        fs.readFileSync(path.join(tmp.dir, backup, 'appendonly-consumers.json'), 'utf8'),
      ) as { consumers: Listed[] };
      expect(saved.consumers.find((c) => c.name === 'ender')!.position).toBe(6);
    });
  }
});
