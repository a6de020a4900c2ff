import * as fs from 'node:fs';
import * as path from 'node:path';
import { type App, PersistenceError } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import { FaultyFileSystem } from './faulty-fs';
import { logDir, openApp, recordingLogger, state, tempDir } from './helpers';

const { Put } = fixtures;
const INCR = 'appendonly.aof.1.incr.aof';

describe.each([
  ['synchronous writes', true],
  ['writes in the thread pool', false],
])(
  'AofStore write failures (%s): reject what is not durable, refuse, recover, lose nothing acknowledged',
  (_, syncWrites) => {
    let dir: string;
    let cleanup: () => void;
    let ffs: FaultyFileSystem;
    const size = () => fs.statSync(path.join(logDir(dir), INCR)).size;
    beforeEach(() => {
      ({ dir, cleanup } = tempDir());
      ffs = new FaultyFileSystem({ syncWrites });
    });
    afterEach(() => cleanup());

    /** Executes `n` commands at once and returns how each ended. */
    async function burst(app: App, from: number, n: number): Promise<PromiseSettledResult<unknown>[]> {
      return Promise.allSettled(
        Array.from({ length: n }, (_, i) => app.execute(new Put(`k${from + i}`, from + i))),
      );
    }

    async function expectRecoversTo(app: App, expected: Record<string, unknown>): Promise<void> {
      ffs.heal();
      await (app as unknown as { recover(): Promise<void> }).recover();
      expect(app.status).toBe('ready');
      expect(state(app)).toEqual(expected);
      await app.execute(new Put('after', true));
      await app.close();
      const { app: reopened } = await openApp({ dir });
      expect(state(reopened)).toEqual({ ...expected, after: true });
      await reopened.close();
    }

    for (const [policy, fault] of [
      ['always', { op: 'write', code: 'ENOSPC' }],
      ['always', { op: 'write', code: 'EIO', short: 7 }],
      ['always', { op: 'fdatasync', code: 'EIO' }],
      ['always', { op: 'fdatasync', code: 'EIO', onEventLoop: true }],
      ['everysec', { op: 'write', code: 'ENOSPC' }],
      ['everysec', { op: 'write', code: 'EIO', short: 20 }],
      ['no', { op: 'write', code: 'ENOSPC' }],
    ] as const) {
      const fsyncOnEventLoop = 'onEventLoop' in fault;
      it(`${policy}: ${fault.code} on ${fault.op}${'short' in fault ? ' after a short write' : ''}${fsyncOnEventLoop ? ' on the event loop' : ''}`, async () => {
        const logger = recordingLogger();
        const { app } = await openApp({ dir, appendfsync: policy, fs: ffs, fsyncOnEventLoop }, logger);
        await burst(app, 0, 3);
        const good = size();
        ffs.inject({ ...fault, match: /incr/ });
        const results = await burst(app, 3, 5);
        // Every command of the failed write rejects with the system's code; the app refuses more.
        for (const r of results) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(PersistenceError);
          expect((r as PromiseRejectedResult).reason.code).toBe(fault.code);
        }
        await expect(app.execute(new Put('refused', 1))).rejects.toMatchObject({ code: fault.code });
        expect(app.stats().store?.lastWriteStatus).toBe('err');
        // The file holds nothing that was not acknowledged.
        expect(size()).toBe(good);
        expect(logger.lines.join('\n')).toMatch(
          new RegExp(`error: (writing|fsync of) ${INCR}.*${fault.code}`),
        );
        await expectRecoversTo(app, { k0: 0, k1: 1, k2: 2 });
      });
    }

    it('a short write alone is completed, not failed', async () => {
      const { app } = await openApp({ dir, appendfsync: 'always', fs: ffs });
      ffs.inject({ op: 'write', code: '', short: 5, match: /incr/ });
      await burst(app, 0, 3);
      expect(ffs.journal.filter((e) => e.startsWith(`write:${INCR}`)).slice(0, 2)).toEqual([
        `write:${INCR}:5(short)`,
        expect.stringMatching(/^write:/),
      ]);
      await app.close();
      const { app: reopened } = await openApp({ dir });
      expect(state(reopened)).toEqual({ k0: 0, k1: 1, k2: 2 });
      await reopened.close();
    });

    it('everysec: a failed background fsync refuses later commands until it succeeds again', async () => {
      const { app } = await openApp({ dir, appendfsync: 'everysec', fs: ffs });
      ffs.inject({ op: 'fdatasync', code: 'EIO', match: /incr/ });
      await burst(app, 0, 2); // acknowledged after the write, as everysec promises
      await new Promise((r) => setTimeout(r, 1300));
      await expect(app.execute(new Put('refused', 1))).rejects.toMatchObject({ code: 'EIO' });
      expect(app.stats().store?.lastWriteStatus).toBe('err');
      await expectRecoversTo(app, { k0: 0, k1: 1 });
    });

    it.each([
      ['in the thread pool', false],
      ['on the event loop', true],
    ])(
      'stays failed while the fault lasts, and recover() rejects (fsync %s)',
      async (_, fsyncOnEventLoop) => {
        const { app } = await openApp({ dir, appendfsync: 'always', fs: ffs, fsyncOnEventLoop });
        ffs.inject({ op: 'fdatasync', code: 'EIO', match: /incr/, times: Number.POSITIVE_INFINITY });
        await burst(app, 0, 2);
        await expect((app as unknown as { recover(): Promise<void> }).recover()).rejects.toMatchObject({
          code: 'EIO',
        });
        expect(app.status).toBe('failed');
        await expectRecoversTo(app, {});
      },
    );
  },
);
