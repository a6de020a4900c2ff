import { type CompactionResult, KeyValueState, PersistenceError, type SnapshotSource } from 'appendonly';
import { CompactionScheduler, type WriteHealth } from '../../src/kit/index';
import { recordingLogger } from '../support/helpers';

/**
 * The scheduler over a real KeyValueState. Its compactions are the test's: each takes its
 * snapshot when the test says (`snapshot()`), then ends when the test says (`finish()` / `fail()`),
 * so every case is a sequence of steps, with no timing. The clock is the test's too.
 */
function setup(settings = { autoRewritePercentage: 100, autoRewriteMinSize: 100 }) {
  const kv = new KeyValueState();
  let seq = 0;
  let now = 1_000_000;
  let size = 0;
  const writes: { error: PersistenceError | null; failures: number } = { error: null, failures: 0 };
  const logger = recordingLogger();
  const runs: {
    snapshots: SnapshotSource;
    seq?: number;
    end: (err?: Error) => void;
  }[] = [];
  const scheduler = new CompactionScheduler(
    settings,
    { snapshots: { takeSnapshot: () => kv.takeSnapshot(seq) }, logger, clock: { now: () => now } },
    {
      unit: 'bytes',
      writes: writes as WriteHealth,
      size: () => size,
      run: (snapshots) =>
        new Promise<CompactionResult>((resolve, reject) => {
          const run = {
            snapshots,
            seq: undefined as number | undefined,
            end: (err?: Error) => {
              if (err) return reject(err);
              resolve({ seq: run.seq ?? -1, keys: kv.size, sizeBefore: size, sizeAfter: 10, durationMs: 0 });
            },
          };
          runs.push(run);
        }),
    },
  );
  const started = () => new Promise((r) => setImmediate(r));
  return {
    scheduler,
    runs,
    writes,
    logger,
    command: () => kv.set(`k${++seq}`, seq),
    /** The latest run takes its snapshot now. */
    snapshot: () => {
      const run = runs[runs.length - 1];
      const snap = run.snapshots.takeSnapshot();
      run.seq = snap.seq;
      snap.release();
    },
    setSize: (n: number) => (size = n),
    advance: (ms: number) => (now += ms),
    started,
  };
}

describe('kit: CompactionScheduler', () => {
  it('joins a compact() made before the running one took its snapshot', async () => {
    // given
    const t = setup();
    t.command();
    const first = t.scheduler.compact();
    await t.started();
    // when: another call, then the snapshot
    const second = t.scheduler.compact();
    t.snapshot();
    t.runs[0].end();
    // then: one compaction, one result
    expect(await second).toBe(await first);
    expect(t.runs).toHaveLength(1);
    expect(t.scheduler.stats()).toMatchObject({ rewrites: 1, rewriteInProgress: false });
  });

  it('coalesces the calls made after the snapshot into one follow-up, which takes its own snapshot later', async () => {
    // given: a compaction past its snapshot
    const t = setup();
    t.command();
    const first = t.scheduler.compact();
    await t.started();
    t.snapshot();
    // when: commands, then several calls
    t.command();
    const later = [t.scheduler.compact(), t.scheduler.compact()];
    t.command();
    later.push(t.scheduler.compact());
    // then: one follow-up is due, and starts only when the first ends
    expect(t.scheduler.stats()).toMatchObject({ rewriteInProgress: true, rewriteScheduled: true });
    t.runs[0].end();
    expect((await first).seq).toBe(1);
    await t.started();
    expect(t.runs).toHaveLength(2);
    t.snapshot();
    t.runs[1].end();
    const results = await Promise.all(later);
    expect(results[1]).toBe(results[0]);
    expect(results[2]).toBe(results[0]);
    expect(results[0].seq).toBe(3);
    expect(t.scheduler.stats()).toMatchObject({ rewrites: 2, rewriteScheduled: false });
  });

  it('cancels a follow-up when a write failed after it was asked for', async () => {
    const t = setup();
    const first = t.scheduler.compact();
    await t.started();
    t.snapshot();
    const followUp = t.scheduler.compact();
    // when: a write fails, then the running one ends
    t.writes.failures++;
    t.runs[0].end();
    await first;
    // then
    await expect(followUp).rejects.toThrow(/compaction cancelled: a write failed/);
    expect(t.runs).toHaveLength(1);
  });

  it('refuses to start while the writes are failed, without counting a failed compaction', async () => {
    const t = setup();
    t.writes.error = new PersistenceError('disk full', 'ENOSPC');
    await expect(t.scheduler.compact()).rejects.toThrow(/disk full/);
    expect(t.runs).toHaveLength(0);
    expect(t.scheduler.stats()).toMatchObject({ rewritesConsecutiveFailures: 0, lastBgrewriteStatus: 'ok' });
  });

  it("triggers on Redis's rule: size > minSize and growth over the base ≥ percentage", async () => {
    // given: base 0 at construction, then 10 after a compaction
    const t = setup({ autoRewritePercentage: 100, autoRewriteMinSize: 100 });
    t.setSize(100);
    t.scheduler.maybeCompact();
    expect(t.runs).toHaveLength(0); // not > minSize
    t.setSize(101);
    t.scheduler.maybeCompact();
    await t.started();
    expect(t.runs).toHaveLength(1);
    t.snapshot();
    t.runs[0].end();
    await t.scheduler.idle();
    expect(t.scheduler.stats().baseSize).toBe(10);
    // when: 101 over a base of 10 has grown by 910 %; with a 1000 % setting it has not
    const strict = setup({ autoRewritePercentage: 1000, autoRewriteMinSize: 100 });
    strict.setSize(10);
    strict.scheduler.rebase();
    strict.setSize(109);
    strict.scheduler.maybeCompact();
    expect(strict.runs).toHaveLength(0); // 990 %
    strict.setSize(110);
    strict.scheduler.maybeCompact(); // 1000 %
    await strict.started();
    expect(strict.runs).toHaveLength(1);
  });

  it('after 3 failures in a row, automatic compactions back off 1, 2, 4 minutes; a manual one still runs', async () => {
    // given: a log always due for compaction, whose compactions fail
    const t = setup({ autoRewritePercentage: 100, autoRewriteMinSize: 0 });
    t.setSize(1000);
    const failAuto = async () => {
      const before = t.runs.length;
      t.scheduler.maybeCompact();
      await t.started();
      if (t.runs.length === before) return false;
      t.runs[t.runs.length - 1].end(new Error('ENOSPC'));
      await t.scheduler.idle();
      return true;
    };
    // when / then: three failures, then it waits
    expect([await failAuto(), await failAuto(), await failAuto()]).toEqual([true, true, true]);
    expect(t.scheduler.stats()).toMatchObject({ rewritesConsecutiveFailures: 3, lastBgrewriteStatus: 'err' });
    expect(await failAuto()).toBe(false);
    expect(t.logger.lines).toContain(
      'warn: compaction has failed repeatedly; retrying automatically in 1 minutes',
    );
    t.advance(59_999);
    expect(await failAuto()).toBe(false);
    t.advance(1);
    expect(await failAuto()).toBe(true); // the retry after a minute fails too: the next wait is 2 minutes
    expect(await failAuto()).toBe(false);
    expect(t.logger.lines).toContain(
      'warn: compaction has failed repeatedly; retrying automatically in 2 minutes',
    );
    // a manual compaction runs whatever the back-off, and its success ends it
    const manual = t.scheduler.compact();
    await t.started();
    t.snapshot();
    t.runs[t.runs.length - 1].end();
    await manual;
    expect(t.scheduler.stats().rewritesConsecutiveFailures).toBe(0);
    t.setSize(1000);
    expect(await failAuto()).toBe(true);
  });

  it('holds automatic compactions after a recovery until the next append', async () => {
    const t = setup({ autoRewritePercentage: 100, autoRewriteMinSize: 0 });
    t.setSize(1000);
    t.scheduler.recovered();
    t.scheduler.maybeCompact();
    await t.started();
    expect(t.runs).toHaveLength(0);
    t.scheduler.appended();
    t.scheduler.maybeCompact();
    await t.started();
    expect(t.runs).toHaveLength(1);
  });
});
