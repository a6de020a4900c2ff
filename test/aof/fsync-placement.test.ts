import { type FileSystem, nodeFileSystem } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';
import { FsyncPlacement, SLOW_FSYNC_SECONDS } from '../../adapters/aof/fsync-placement';
import { openApp, tempDir } from './helpers';

const { Put } = fixtures;
const FAST = SLOW_FSYNC_SECONDS / 10;
const SLOW = SLOW_FSYNC_SECONDS * 5;

/** A placement whose lone groups go to the loop (the run of lone batches is made). */
function adaptive(): FsyncPlacement {
  const p = new FsyncPlacement('adaptive');
  for (let i = 0; i < 3; i++) p.onEventLoop(1);
  return p;
}

/** Observes `n` fsyncs of `seconds` in the pool. */
function inPool(p: FsyncPlacement, n: number, seconds = FAST): void {
  for (let i = 0; i < n; i++) p.observe(seconds, false);
}

describe('FsyncPlacement: where an always group is fsynced', () => {
  it('fixed placements ignore what the fsyncs take', () => {
    const loop = new FsyncPlacement(true);
    const pool = new FsyncPlacement(false);
    loop.observe(SLOW, true);
    pool.observe(FAST, false);
    expect([loop.onEventLoop(1), loop.onEventLoop(64)]).toEqual([true, true]);
    expect([pool.onEventLoop(1), pool.onEventLoop(64)]).toEqual([false, false]);
  });

  it('adaptive: lone groups on the loop from the 4th in a row, groups that piled up in the pool', () => {
    const p = new FsyncPlacement('adaptive');
    expect([1, 1, 1, 1, 1].map((g) => p.onEventLoop(g))).toEqual([false, false, false, true, true]);
    p.observe(FAST, true);
    expect(p.onEventLoop(2)).toBe(false);
    // A lone batch right after a crowded one is no sign of one command at a time.
    expect([1, 1, 1, 1].map((g) => p.onEventLoop(g))).toEqual([false, false, false, true]);
  });

  it('adaptive: one slow fsync sends lone groups to the pool until 32 fast pool fsyncs in a row', () => {
    const p = adaptive();
    p.observe(SLOW, true);
    expect(p.onEventLoop(1)).toBe(false);
    inPool(p, 31);
    p.observe(SLOW, false); // a slow one restarts the count
    inPool(p, 31);
    expect(p.onEventLoop(1)).toBe(false);
    inPool(p, 1);
    expect(p.onEventLoop(1)).toBe(true);
    expect(p.fallBacks).toBe(1);
  });

  it('adaptive: a slow fsync in the pool counts too (the loop is not tried on a disk seen slow)', () => {
    const p = adaptive();
    p.observe(SLOW, false);
    expect(p.onEventLoop(1)).toBe(false);
  });

  it('adaptive: a fall back soon after a try doubles the probation, one after a long fast run starts it again', () => {
    const p = adaptive();
    p.observe(SLOW, true);
    inPool(p, 32);
    p.observe(SLOW, true);
    inPool(p, 63);
    expect(p.onEventLoop(1)).toBe(false);
    inPool(p, 1);
    expect(p.onEventLoop(1)).toBe(true);
    for (let i = 0; i < 128; i++) p.observe(FAST, true);
    p.observe(SLOW, true);
    inPool(p, 31);
    expect(p.onEventLoop(1)).toBe(false);
    inPool(p, 1);
    expect(p.onEventLoop(1)).toBe(true);
    expect(p.fallBacks).toBe(3);
  });
});

/** Blocks the thread `ms` milliseconds, as a slow synchronous fsync does. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('AofStore always, adaptive fsync placement on a slow disk', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('never blocks the event loop on a disk whose fsyncs are slow, every acknowledgement after its fsync', async () => {
    // The real file system, every fdatasync 5× slower than the threshold: on the loop it blocks
    // the thread, in the pool it waits without blocking it, as a slow disk does. The first
    // lone groups go to the pool (the run of lone batches is not made yet), where the first
    // fsync is seen slow: the loop is never tried.
    const journal: string[] = [];
    const fs: FileSystem = {
      ...nodeFileSystem,
      fdatasyncSync(fd) {
        sleepSync(SLOW * 1000);
        nodeFileSystem.fdatasyncSync(fd);
        journal.push('fsync on the loop');
      },
      async fdatasync(fd) {
        await new Promise((r) => setTimeout(r, SLOW * 1000));
        await nodeFileSystem.fdatasync(fd);
        journal.push('fsync in the pool');
      },
    };
    const { app } = await openApp({ dir, appendfsync: 'always', fs });
    const from = journal.length;
    const loopRan: boolean[] = [];
    for (let i = 0; i < 10; i++) {
      let ran = false;
      const acked = app.execute(new Put(`k${i}`, i));
      // Queued after the group's flush: it runs before the acknowledgement only if the flush
      // did not hold the event loop until the fsync returned.
      setImmediate(() => (ran = true));
      await acked;
      journal.push(`ack:${i}`);
      loopRan.push(ran);
    }
    expect(journal.slice(from)).toEqual(
      Array.from({ length: 10 }, (_, i) => ['fsync in the pool', `ack:${i}`]).flat(),
    );
    expect(loopRan).toEqual(Array.from({ length: 10 }, () => true));
    expect(app.stats().store).toMatchObject({ eventLoopFsyncs: 0, poolFsyncs: 10, fsyncFallBacks: 1 });
    await app.close();
    const { app: reopened } = await openApp({ dir });
    expect(Array.from({ length: 10 }, (_, i) => reopened.state.get(`k${i}`))).toEqual(
      Array.from({ length: 10 }, (_, i) => i),
    );
    await reopened.close();
  });

  it('when the disk turns slow, blocks the event loop for one fsync at most, then fsyncs in the pool', async () => {
    // Real fsyncs first (on the loop or in the pool, as fast as this disk is now), then every
    // fsync 5× too slow: whatever the placement was, at most one group (the one that finds the
    // disk slow) is fsynced on the loop after the change, every later one in the pool.
    let slow = false;
    const journal: string[] = [];
    const fs: FileSystem = {
      ...nodeFileSystem,
      fdatasyncSync(fd) {
        if (slow) sleepSync(SLOW * 1000);
        nodeFileSystem.fdatasyncSync(fd);
        journal.push('fsync on the loop');
      },
      async fdatasync(fd) {
        if (slow) await new Promise((r) => setTimeout(r, SLOW * 1000));
        await nodeFileSystem.fdatasync(fd);
        journal.push('fsync in the pool');
      },
    };
    const { app } = await openApp({ dir, appendfsync: 'always', fs });
    let i = 0;
    for (; i < 40; i++) await app.execute(new Put(`k${i}`, i));
    slow = true;
    const from = journal.length;
    const loopRan: boolean[] = [];
    for (let n = 0; n < 6; n++, i++) {
      let ran = false;
      const acked = app.execute(new Put(`k${i}`, i));
      setImmediate(() => (ran = true));
      await acked;
      journal.push('ack');
      loopRan.push(ran);
    }
    const after = journal.slice(from);
    // One fsync before each acknowledgement, and no more than one on the loop.
    expect(after.filter((e, k) => e === 'ack' && !after[k - 1]?.startsWith('fsync'))).toEqual([]);
    expect(after.filter((e) => e === 'ack')).toHaveLength(6);
    expect(after.filter((e) => e === 'fsync on the loop').length).toBeLessThanOrEqual(1);
    expect(after.slice(2)).toEqual(Array.from({ length: 5 }, () => ['fsync in the pool', 'ack']).flat());
    expect(loopRan.slice(1)).toEqual([true, true, true, true, true]);
    await app.close();
    const { app: reopened } = await openApp({ dir });
    expect(Array.from({ length: i }, (_, k) => reopened.state.get(`k${k}`))).toEqual(
      Array.from({ length: i }, (_, k) => k),
    );
    await reopened.close();
  });

  it('a failed fsync in the pool rejects the command and refuses the next, nothing of them in the log', async () => {
    let fail = false;
    const fs: FileSystem = {
      ...nodeFileSystem,
      fdatasyncSync(fd) {
        sleepSync(SLOW * 1000);
        nodeFileSystem.fdatasyncSync(fd);
      },
      async fdatasync(fd) {
        if (fail) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        await nodeFileSystem.fdatasync(fd);
      },
    };
    const { app } = await openApp({ dir, appendfsync: 'always', fs });
    await app.execute(new Put('a', 1)); // the first lone groups go to the pool
    fail = true;
    await expect(app.execute(new Put('b', 2))).rejects.toThrow(/fsync of appendonly\.aof\.1\.incr\.aof.*EIO/);
    await expect(app.execute(new Put('c', 3))).rejects.toThrow(/EIO/);
    fail = false;
    await app.close().catch(() => {});
    const { app: reopened } = await openApp({ dir });
    expect([reopened.state.get('a'), reopened.state.get('b'), reopened.state.get('c')]).toEqual([
      1,
      undefined,
      undefined,
    ]);
    await reopened.close();
  });
});
