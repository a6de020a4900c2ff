import * as fs from 'node:fs';
import * as path from 'node:path';
import { EverysecSyncer } from '../../src/kit/index';
import { recordingLogger, tempDir } from '../support/helpers';

/**
 * The syncer on a real file: its fsync is a real fdatasync, started when the test opens `gate`
 * (so that "an fsync is running" lasts as long as the test wants, with no timing), and its clock
 * is the test's (`now`), as a store passes its context's clock.
 */
function setup(fd: number) {
  let now = 1_000_000;
  let open: () => void = () => {};
  const calls = { fsyncs: 0, resumes: 0, failures: [] as unknown[], skip: false };
  const logger = recordingLogger();
  const syncer = new EverysecSyncer({
    logger,
    now: () => now,
    fsync: () => {
      if (calls.skip) return null;
      calls.fsyncs++;
      const gate = new Promise<void>((r) => (open = r));
      return gate.then(
        () => new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve()))),
      );
    },
    resume: () => calls.resumes++,
    failed: (err) => calls.failures.push(err),
  });
  return {
    syncer,
    calls,
    logger,
    advance: (ms: number) => (now += ms),
    release: () => open(),
  };
}

describe('kit: EverysecSyncer', () => {
  let cleanup: () => void;
  let fd: number;
  beforeEach(() => {
    const t = tempDir('kit');
    cleanup = t.cleanup;
    fd = fs.openSync(path.join(t.dir, 'log'), 'w+');
    fs.writeSync(fd, 'some bytes');
  });
  afterEach(() => {
    fs.closeSync(fd);
    cleanup();
  });

  it('fsyncs after a write once a second has passed since the last fsync, not before', async () => {
    const { syncer, calls, advance, release } = setup(fd);
    // when: a write within the second
    syncer.written();
    // then: nothing yet
    expect(calls.fsyncs).toBe(0);
    // when: a write after it
    advance(1000);
    syncer.written();
    // then: one fsync, running until the disk has it
    expect(calls.fsyncs).toBe(1);
    expect(syncer.running).not.toBeNull();
    release();
    await syncer.running;
    expect(syncer.running).toBeNull();
    await syncer.stop();
  });

  it('postpones writes while an fsync runs; after 2 s one goes anyway and counts one delayed fsync', async () => {
    // given: an fsync running
    const { syncer, calls, logger, advance, release } = setup(fd);
    advance(1000);
    syncer.written();
    // when / then: writes wait
    expect(syncer.mustPostpone()).toBe(true);
    advance(1999);
    expect(syncer.mustPostpone()).toBe(true);
    expect(syncer.delayed).toBe(0);
    // when: 2 s of postponing have passed
    advance(1);
    // then: the write goes, and that is one delayed fsync (not one per second or per call)
    expect(syncer.mustPostpone()).toBe(false);
    expect(syncer.delayed).toBe(1);
    expect(logger.lines.join('\n')).toMatch(/fsync is taking too long/);
    // when: the fsync ends
    release();
    await syncer.running;
    // then: writes no longer wait, nothing more is counted
    expect(syncer.mustPostpone()).toBe(false);
    expect(syncer.delayed).toBe(1);
    expect(calls.failures).toEqual([]);
    await syncer.stop();
  });

  it('resumes postponed writes when the fsync they waited for ends', async () => {
    const { syncer, calls, advance, release } = setup(fd);
    advance(1000);
    syncer.written();
    expect(syncer.mustPostpone()).toBe(true);
    expect(syncer.postponing).toBe(true);
    release();
    await syncer.running;
    expect(calls.resumes).toBe(1);
    expect(syncer.delayed).toBe(0);
    await syncer.stop();
  });

  it('an fsync that may not run now (noAppendfsyncOnRewrite) leaves the bytes due for the next one', async () => {
    const { syncer, calls, advance, release } = setup(fd);
    calls.skip = true;
    advance(1000);
    syncer.written();
    expect(syncer.running).toBeNull();
    calls.skip = false;
    syncer.start();
    expect(calls.fsyncs).toBe(1);
    release();
    await syncer.stop();
  });

  it('a failed fsync is reported to the store', async () => {
    const { syncer, calls, advance, release } = setup(fd);
    advance(1000);
    syncer.written();
    fs.closeSync(fd);
    release();
    await syncer.running;
    expect(calls.failures).toHaveLength(1);
    expect((calls.failures[0] as NodeJS.ErrnoException).code).toBe('EBADF');
    fd = fs.openSync(__filename, 'r'); // for afterEach
    await syncer.stop();
  });
});
