import { createApp, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';
import { FaultyFileSystem } from './faulty-fs';
import { openApp, readLogFile, tempDir } from './helpers';

const { Put } = fixtures;
const INCR = 'appendonly.aof.1.incr.aof';

/** The journal from `from` on, keeping the appends and fsyncs of the incr file and the acks. */
function trace(fs: FaultyFileSystem, from: number): string[] {
  return fs.journal
    .slice(from)
    .filter((e) => e.startsWith('ack') || e.includes(INCR))
    .map((e) => e.replace(`:${INCR}`, '').replace(/^write:\d+$/, 'write'));
}

describe('AofStore fsync policies: when a command is acknowledged', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('always: commands in flight together share one write and one fdatasync, and none is acknowledged before it', async () => {
    const fs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'always', fs });
    const from = fs.journal.length;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        app.execute(new Put(`k${i}`, i)).then(() => fs.journal.push(`ack:${i}`)),
      ),
    );
    expect(trace(fs, from)).toEqual([
      'write',
      'fdatasync',
      ...Array.from({ length: 10 }, (_, i) => `ack:${i}`),
    ]);
    await app.close();
  });

  it('always with fsyncOnEventLoop: one write and one fdatasync on the event loop per group, before any acknowledgement', async () => {
    const fs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'always', fs, fsyncOnEventLoop: true });
    const from = fs.journal.length;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        app.execute(new Put(`k${i}`, i)).then(() => fs.journal.push(`ack:${i}`)),
      ),
    );
    await app.execute(new Put('k', 'alone'));
    fs.journal.push('ack:alone');
    expect(trace(fs, from)).toEqual([
      'write',
      'fdatasyncSync',
      ...Array.from({ length: 10 }, (_, i) => `ack:${i}`),
      'write',
      'fdatasyncSync',
      'ack:alone',
    ]);
    await app.close();
  });

  it('fsyncOnEventLoop changes only the fsync of always appends: everysec, no, the compaction switch and close stay in the pool', async () => {
    for (const policy of ['everysec', 'no'] as const) {
      const fs = new FaultyFileSystem();
      const { app } = await openApp({ dir, appendfsync: policy, fs, fsyncOnEventLoop: true });
      await Promise.all(Array.from({ length: 10 }, (_, i) => app.execute(new Put(`k${i}`, i))));
      await new Promise((r) => setTimeout(r, 1100)); // everysec's background fsync comes due
      await app.close();
      expect(fs.journal.filter((e) => e.startsWith('fdatasyncSync'))).toEqual([]);
      expect(fs.journal.filter((e) => e.startsWith(`fdatasync:${INCR}`)).length).toBeGreaterThan(0);
    }
    const fs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'always', fs, fsyncOnEventLoop: true });
    const from = fs.journal.length;
    await app.execute(new Put('before', 1));
    await app.compact();
    await app.execute(new Put('after', 2));
    await app.close();
    const journal = fs.journal.slice(from);
    const syncs = journal.flatMap((e, i) => (e.startsWith('fdatasyncSync:') ? [i] : []));
    // One synchronous fsync per append, right after the append's write to the same file…
    expect(syncs).toHaveLength(2);
    for (const i of syncs) expect(journal[i - 1]).toMatch(new RegExp(`^write:${journal[i].split(':')[1]}:`));
    // …and the switch (the old incr file), the new base and close fsync in the pool.
    expect(journal).toContain(`fdatasync:${INCR}`);
    expect(journal.filter((e) => e.startsWith('fsync:temp-rewriteaof')).length).toBeGreaterThan(0);
    expect(journal[journal.length - 1]).toMatch(/^fdatasync:.*incr/);
  });

  it.each([
    // Adaptive: on the event loop while this disk's fsyncs are fast, in the pool after a slow one.
    ['by default (adaptive)', undefined, expect.stringMatching(/^fdatasync(Sync)?$/)],
    ['in the pool with fsyncOnEventLoop false', false, 'fdatasync'],
    ['on the event loop with fsyncOnEventLoop true', true, 'fdatasyncSync'],
  ] as const)(
    'always: one command at a time is written and fsynced before its acknowledgement, each time, %s',
    async (_, fsyncOnEventLoop, fsync) => {
      const fs = new FaultyFileSystem();
      const { app } = await openApp({ dir, appendfsync: 'always', fs, fsyncOnEventLoop });
      const from = fs.journal.length;
      for (let i = 0; i < 5; i++) {
        await app.execute(new Put('k', i));
        fs.journal.push(`ack:${i}`);
      }
      expect(trace(fs, from)).toEqual(
        Array.from({ length: 5 }, (_, i) => ['write', fsync, `ack:${i}`]).flat(),
      );
      await app.close();
    },
  );

  it('always: 64 clients in flight get group commit (fewer writes than commands, one fdatasync per write)', async () => {
    const fs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'always', fs });
    const from = fs.journal.length;
    let n = 0;
    await Promise.all(
      Array.from({ length: 64 }, async (_, c) => {
        for (let i = 0; i < 10; i++) {
          await app.execute(new Put(`c${c}`, i));
          n++;
        }
      }),
    );
    const t = trace(fs, from);
    const writes = t.filter((e) => e === 'write').length;
    expect(n).toBe(640);
    expect(writes).toBeLessThan(64);
    expect(t.filter((e) => e === 'fdatasync').length).toBe(writes);
    await app.close();
  });

  it('always, 64 in flight for many turns: no command is acknowledged before an fdatasync covering its group', async () => {
    // However a turn's groups are split into batches (one per turn, or two in alternation while
    // the loop's work outlasts an fsync), the bytes of every acknowledged group were written
    // before an fdatasync that had returned: counted in groups (#CRC lines) of the file.
    const fs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'always', fs });
    const from = fs.journal.length;
    let acked = 0;
    await Promise.all(
      Array.from({ length: 64 }, async (_, c) => {
        for (let i = 0; i < 60; i++) {
          await app.execute(new Put(`c${c}`, { i, pad: 'x'.repeat(c) }));
          fs.journal.push(`ack:${++acked}`);
        }
      }),
    );
    await app.close();
    const file = readLogFile(dir, INCR);
    const crcEnds: number[] = [];
    for (let at = file.indexOf('#CRC:'); at >= 0; at = file.indexOf('#CRC:', at + 1)) crcEnds.push(at + 15);
    const before = fs.journal.slice(0, from).filter((e) => e.startsWith(`write:${INCR}:`));
    let written = before.reduce((sum, e) => sum + Number(e.split(':')[2]), 0);
    let durable = 0;
    let checked = 0;
    for (const e of fs.journal.slice(from)) {
      if (e.startsWith(`write:${INCR}:`)) written += Number(e.split(':')[2]);
      else if (e === `fdatasync:${INCR}`) durable = written;
      else if (e.startsWith('ack:')) {
        const groupsDurable = crcEnds.filter((end) => end <= durable).length;
        expect(groupsDurable).toBeGreaterThanOrEqual(Number(e.slice(4)));
        checked++;
      }
    }
    expect(checked).toBe(64 * 60);
  });

  it('everysec: acknowledged after the write, fsynced in the background about a second later', async () => {
    const fs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'everysec', fs });
    const from = fs.journal.length;
    await Promise.all(
      Array.from({ length: 3 }, (_, i) =>
        app.execute(new Put(`k${i}`, i)).then(() => fs.journal.push(`ack:${i}`)),
      ),
    );
    expect(trace(fs, from)).toEqual(['write', 'ack:0', 'ack:1', 'ack:2']);
    await new Promise((r) => setTimeout(r, 1300));
    expect(trace(fs, from)).toEqual(['write', 'ack:0', 'ack:1', 'ack:2', 'fdatasync']);
    expect(app.stats().store).toMatchObject({
      appendfsync: 'everysec',
      pendingBioFsync: 0,
      delayedFsync: 0,
      lastWriteStatus: 'ok',
    });
    await app.close();
  });

  it('everysec: while a background fsync runs, writes wait for it, then go after 2 s and count a delayed fsync', async () => {
    const fs = new FaultyFileSystem();
    let now = 1_000_000;
    const clock = { now: () => now };
    const store = new AofStore({ dir, appendfsync: 'everysec', fs });
    const app = await createApp({ ...fixtures.conformanceClasses, store, logger: silentLogger, clock });
    await app.execute(new Put('a', 1));
    const resume = fs.pauseNext('fdatasync', /incr/);
    now += 1001;
    await app.execute(new Put('b', 2)); // written; a second has passed: the background fsync starts (and hangs)
    expect(app.stats().store?.pendingBioFsync).toBe(1);
    let acked = false;
    const c = app.execute(new Put('c', 3)).then(() => (acked = true));
    await new Promise((r) => setTimeout(r, 20));
    expect(acked).toBe(false); // postponed while the fsync runs
    now += 2001;
    await app.execute(new Put('d', 4)); // 2 s of postponing: written anyway
    await c;
    expect(app.stats().store?.delayedFsync).toBe(1);
    resume();
    await app.close();
    const { app: reopened } = await openApp({ dir });
    expect(reopened.state.get('d')).toBe(4);
    await reopened.close();
  });

  it('no: acknowledged after the write, never fsynced until close', async () => {
    const fs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'no', fs });
    const from = fs.journal.length;
    await app.execute(new Put('k', 1));
    fs.journal.push('ack');
    await new Promise((r) => setTimeout(r, 1100));
    expect(trace(fs, from)).toEqual(['write', 'ack']);
    await app.close();
    expect(trace(fs, from)).toEqual(['write', 'ack', 'fdatasync']);
  });
});
