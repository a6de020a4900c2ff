import * as fs from 'node:fs';
import * as path from 'node:path';
import type { App } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { FaultyFileSystem } from './faulty-fs';
import { logDir, openApp, recordingLogger, state, tempDir } from './helpers';

const { Put, PutMany, Count, FlushAll } = fixtures;

/** Runs `clients` loops of Put(`c<i>`, n) until `until` settles; returns the last value each client saw acknowledged. */
async function flowDuring(app: App, until: Promise<unknown>, clients = 16): Promise<Map<string, number>> {
  const acked = new Map<string, number>();
  let done = false;
  until.then(
    () => (done = true),
    () => (done = true),
  );
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let n = 0; !done; n++) {
        try {
          await app.execute(new Put(`c${c}`, n));
          acked.set(`c${c}`, n);
        } catch {
          await new Promise((r) => setTimeout(r, 1));
        }
      }
    }),
  );
  return acked;
}

describe('AofStore compaction', () => {
  let dir: string;
  let cleanup: () => void;
  const files = () => fs.readdirSync(logDir(dir)).sort();
  const manifest = () => fs.readFileSync(path.join(logDir(dir), 'appendonly.aof.manifest'), 'utf8');
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('rewrites 10k keys written 5 times as one base while 16 clients keep writing, and loses none of their commands', async () => {
    const { app } = await openApp({ dir, appendfsync: 'always' });
    for (let i = 0; i < 5; i++)
      await app.execute(new PutMany(Array.from({ length: 10_000 }, (_, j) => [`k${j}`, { i, j }])));
    await app.execute(new Count('n', 5));
    const compaction = app.compact();
    const acked = await flowDuring(app, compaction);
    const result = await compaction;
    expect(result).toMatchObject({ seq: expect.any(Number), keys: expect.any(Number) });
    expect(result.keys).toBeGreaterThanOrEqual(10_001);
    expect(result.sizeAfter).toBeLessThan(result.sizeBefore);
    expect(files()).toEqual([
      'appendonly.aof.1.base.aof',
      'appendonly.aof.2.incr.aof',
      'appendonly.aof.manifest',
    ]);
    expect(manifest()).toBe(
      `file appendonly.aof.1.base.aof seq 1 type b lastseq ${result.seq}\nfile appendonly.aof.2.incr.aof seq 2 type i startseq ${result.seq + 1}\n`,
    );
    expect(app.stats().store).toMatchObject({
      rewrites: 1,
      lastBgrewriteStatus: 'ok',
      rewriteInProgress: false,
    });
    const live = state(app);
    const lastSeq = app.stats().lastSeq;
    await app.close();
    const { app: reopened } = await openApp({ dir });
    expect(state(reopened)).toEqual(live);
    expect(reopened.stats().lastSeq).toBe(lastSeq);
    for (const [key, n] of acked) expect(reopened.state.get(key)).toBeGreaterThanOrEqual(n);
    await reopened.close();
  });

  it('with keepHistory, moves the replaced files to history/ (an old FLUSHALL can still be undone)', async () => {
    const { app } = await openApp({ dir, keepHistory: true });
    await app.execute(new Put('precious', 1));
    await app.execute(new FlushAll());
    await app.compact();
    await app.execute(new Put('x', 1));
    await app.compact();
    await app.close();
    expect(fs.readdirSync(path.join(logDir(dir), 'history')).sort()).toEqual([
      'appendonly.aof.1.base.aof',
      'appendonly.aof.1.incr.aof',
      'appendonly.aof.2.incr.aof',
    ]);
    expect(
      fs.readFileSync(path.join(logDir(dir), 'history', 'appendonly.aof.1.incr.aof'), 'latin1'),
    ).toContain('precious');
    expect(files()).toEqual([
      'appendonly.aof.2.base.aof',
      'appendonly.aof.3.incr.aof',
      'appendonly.aof.manifest',
      'history',
    ]);
  });

  it('a failed compaction (rename of the new base) leaves the old log working, removes its temp file, and the next one succeeds', async () => {
    const ffs = new FaultyFileSystem();
    const logger = recordingLogger();
    const { app } = await openApp({ dir, fs: ffs }, logger);
    await app.execute(new Put('a', 1));
    ffs.inject({ op: 'rename', code: 'ENOSPC', match: /^temp-rewriteaof/ });
    const compaction = app.compact();
    const acked = await flowDuring(app, compaction, 4);
    await expect(compaction).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(app.stats().store).toMatchObject({
      lastBgrewriteStatus: 'err',
      rewritesConsecutiveFailures: 1,
      rewrites: 0,
    });
    expect(logger.lines.join('\n')).toMatch(/compaction failed, the log is unchanged: ENOSPC/);
    expect(files().filter((f) => f.startsWith('temp-'))).toEqual([]);
    // The manifest keeps both incr files: nothing is lost.
    expect(manifest()).toMatch(/appendonly\.aof\.1\.incr\.aof.*\n.*appendonly\.aof\.2\.incr\.aof/);
    await app.execute(new Put('b', 2));
    await app.compact();
    expect(app.stats().store).toMatchObject({
      lastBgrewriteStatus: 'ok',
      rewritesConsecutiveFailures: 0,
      rewrites: 1,
    });
    const live = state(app);
    await app.close();
    const { app: reopened } = await openApp({ dir });
    expect(state(reopened)).toEqual(live);
    for (const [key, n] of acked) expect(reopened.state.get(key)).toBeGreaterThanOrEqual(n);
    await reopened.close();
  });

  it('a failed switch of manifest puts the writer back on the old file, with the commands it held', async () => {
    const ffs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'always', fs: ffs });
    await app.execute(new Put('a', 1));
    ffs.inject({ op: 'rename', code: 'EIO', match: /manifest/ });
    const compaction = app.compact();
    const acked = await flowDuring(app, compaction, 4);
    await expect(compaction).rejects.toMatchObject({ code: 'EIO' });
    expect(files()).toEqual(['appendonly.aof.1.incr.aof', 'appendonly.aof.manifest']);
    await app.execute(new Put('b', 2));
    const live = state(app);
    await app.close();
    const { app: reopened } = await openApp({ dir });
    expect(state(reopened)).toEqual(live);
    for (const [key, n] of acked)
      expect(reopened.state.get(key)).toBe(live[key] === undefined ? n : live[key]);
    await reopened.close();
  });

  it('a crash at any step of a compaction reopens to every acknowledged command (disk frozen after each file operation)', async () => {
    // Count the file operations of one compaction with commands flowing.
    const probe = new FaultyFileSystem();
    {
      const { app } = await openApp({ dir, appendfsync: 'always', fs: probe });
      await app.execute(
        new PutMany([
          ['a', 1],
          ['b', 2],
        ]),
      );
      const before = probe.mutationCount;
      await app.compact();
      const steps = probe.mutationCount - before;
      await app.close();
      cleanup();
      expect(steps).toBeGreaterThan(8);
      for (let k = 0; k <= steps; k++) {
        ({ dir, cleanup } = tempDir());
        const ffs = new FaultyFileSystem();
        const { app: a } = await openApp({ dir, appendfsync: 'always', fs: ffs });
        await a.execute(
          new PutMany([
            ['a', 1],
            ['b', 2],
          ]),
        );
        await a.execute(new Count('n', 1));
        ffs.freezeAfter(k);
        const compaction = a.compact();
        const acked = await flowDuring(a, compaction, 3);
        await compaction.catch(() => {});
        await a.close().catch(() => {});
        const { app: reopened } = await openApp({ dir });
        expect({
          k,
          a: reopened.state.get('a'),
          b: reopened.state.get('b'),
          n: reopened.state.get('n'),
        }).toEqual({ k, a: 1, b: 2, n: 1 });
        // Acknowledged values survive; a later unacknowledged one may too (the crash came after its write).
        for (const [key, n] of acked)
          expect({ k, key, ok: (reopened.state.get(key) as number) >= n }).toEqual({ k, key, ok: true });
        await reopened.close();
        if (k < steps) cleanup();
      }
    }
  });

  it('finishes off what a compaction interrupted after its manifest switch left behind (delete, or history/)', async () => {
    for (const keepHistory of [false, true]) {
      fs.rmSync(dir, { recursive: true, force: true });
      const { app } = await openApp({ dir, keepHistory });
      await app.execute(new Put('a', 1));
      await app.close();
      // As if a compaction had died after switching the manifest: its replaced files remain.
      fs.writeFileSync(path.join(logDir(dir), 'appendonly.aof.0.base.aof'), '*1\r\n$8\r\nFLUSHALL\r\n');
      fs.writeFileSync(path.join(logDir(dir), 'appendonly.aof.9.incr.aof'), '');
      fs.writeFileSync(path.join(logDir(dir), 'notes.txt'), 'not ours');
      const logger = recordingLogger();
      const { app: reopened } = await openApp({ dir, keepHistory }, logger);
      expect(state(reopened)).toEqual({ a: 1 });
      await reopened.close();
      expect(files()).toEqual([
        'appendonly.aof.1.incr.aof',
        'appendonly.aof.manifest',
        ...(keepHistory ? ['history'] : []),
        'notes.txt',
      ]);
      if (keepHistory) {
        expect(fs.readdirSync(path.join(logDir(dir), 'history')).sort()).toEqual([
          'appendonly.aof.0.base.aof',
          'appendonly.aof.9.incr.aof',
        ]);
      }
      expect(logger.lines.join('\n')).toContain(
        'log files left by an interrupted compaction: appendonly.aof.0.base.aof, appendonly.aof.9.incr.aof',
      );
    }
  });

  it('starts automatically when the log has doubled past autoRewriteMinSize, and backs off after 3 failures', async () => {
    const ffs = new FaultyFileSystem();
    const logger = recordingLogger();
    const { app } = await openApp(
      { dir, fs: ffs, autoRewriteMinSize: 2000, autoRewritePercentage: 100 },
      logger,
    );
    for (let i = 0; i < 100 && app.stats().store?.rewrites === 0; i++) {
      await app.execute(new Put(`k${i % 5}`, 'v'.repeat(50)));
      await new Promise((r) => setImmediate(r));
    }
    while (app.stats().store?.rewriteInProgress) await new Promise((r) => setTimeout(r, 5));
    expect(app.stats().store?.rewrites).toBe(1);
    expect(logger.lines.join('\n')).toMatch(
      /starting automatic compaction: the log grew by \d+% to \d+ bytes/,
    );
    // Now every compaction fails: after 3 failures in a row, automatic ones wait a minute.
    ffs.inject({ op: 'rename', code: 'ENOSPC', match: /^temp-rewriteaof/, times: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 400; i++) {
      await app.execute(new Put(`x${i}`, 'v'.repeat(50)));
      while (app.stats().store?.rewriteInProgress) await new Promise((r) => setTimeout(r, 2));
    }
    expect(app.stats().store?.rewritesConsecutiveFailures).toBe(3);
    expect(logger.lines.join('\n')).toContain(
      'compaction has failed repeatedly; retrying automatically in 1 minutes',
    );
    await app.close();
  });

  it('noAppendfsyncOnRewrite: under always, commands during a compaction are written but not fsynced', async () => {
    const ffs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'always', noAppendfsyncOnRewrite: true, fs: ffs });
    await app.execute(new Put('a', 1));
    const resume = ffs.pauseNext('rename', /^temp-rewriteaof/);
    const compaction = app.compact();
    while (
      !app.stats().store?.rewriteInProgress ||
      !ffs.journal.some((e) => e.startsWith('write:temp-rewriteaof'))
    ) {
      await new Promise((r) => setTimeout(r, 1));
    }
    const from = ffs.journal.length;
    await app.execute(new Put('b', 2));
    expect(ffs.journal.slice(from)).toEqual([
      expect.stringMatching(/^write:appendonly\.aof\.2\.incr\.aof:\d+$/),
    ]);
    resume();
    await compaction;
    const after = ffs.journal.length;
    await app.execute(new Put('c', 3));
    expect(ffs.journal.slice(after)).toEqual([
      expect.stringMatching(/^write:appendonly\.aof\.2\.incr/),
      // A lone command's fsync runs on the event loop by default (fsyncOnEventLoop 'adaptive'),
      // in the pool after a slow fsync.
      expect.stringMatching(/^fdatasync(Sync)?:appendonly\.aof\.2\.incr\.aof$/),
    ]);
    await app.close();
  });
});
