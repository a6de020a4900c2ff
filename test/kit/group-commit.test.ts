import * as fs from 'node:fs';
import * as path from 'node:path';
import { PersistenceError } from 'appendonly';
import { GroupCommit, type GroupCommitHost, type Waiting, writeFully } from '../../src/kit/index';
import { tempDir } from '../support/helpers';

/** A batch of the test log: lines appended to a real file. */
interface Lines extends Waiting {
  lines: string[];
}

function batch(): Lines {
  return { lines: [], resolves: [], rejects: [] };
}

/**
 * The smallest store on the kit: appends lines to a real file, one write + fdatasync per batch,
 * cut back to the last good size on failure. `events` records what happened, in order.
 */
class LineLog {
  readonly events: string[] = [];
  readonly commit: GroupCommit<Lines>;
  size = 0;
  /** When set, the next commit writes half its bytes and then fails (a torn write). */
  tearNext = false;
  private pending = batch();

  constructor(readonly fd: number) {
    const host: GroupCommitHost<Lines> = {
      take: () => {
        if (this.pending.lines.length === 0) return null;
        const b = this.pending;
        this.pending = batch();
        return b;
      },
      commit: async (b) => {
        const bytes = Buffer.from(b.lines.join(''));
        this.events.push(`commit ${b.lines.length}`);
        if (this.tearNext) {
          this.tearNext = false;
          fs.writeSync(fd, bytes, 0, bytes.length >> 1, this.size);
          throw Object.assign(new Error('torn'), { code: 'EIO' });
        }
        await writeFully(fs.writeSync, fd, bytes, this.size);
        await fdatasync(fd);
        this.size += bytes.length;
      },
      drop: () => {
        const b = this.pending;
        this.pending = batch();
        return [b];
      },
      undo: (failed) => {
        this.events.push(`undo ${failed === null ? 'none' : failed.lines.length}`);
        fs.ftruncateSync(fd, this.size);
      },
      error: (err) => PersistenceError.from('line log', err),
    };
    this.commit = new GroupCommit(host);
  }

  append(line: string): Promise<void> {
    if (this.commit.error !== null) return Promise.reject(this.commit.error);
    this.pending.lines.push(`${line}\n`);
    this.commit.schedule();
    return this.commit.waitFor(this.pending);
  }
}

describe('kit: GroupCommit', () => {
  let dir: string;
  let cleanup: () => void;
  let file: string;
  let log: LineLog;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir('kit'));
    file = path.join(dir, 'lines.log');
    log = new LineLog(fs.openSync(file, 'w+'));
  });
  afterEach(() => {
    fs.closeSync(log.fd);
    cleanup();
  });
  const content = () => fs.readFileSync(file, 'utf8');

  it('makes the appends of one turn one batch, and resolves each only once the file holds it', async () => {
    // given / when: ten appends in one synchronous run
    const seen: string[] = [];
    const acks = Array.from({ length: 10 }, (_, i) =>
      log.append(`line ${i}`).then(() => seen.push(content())),
    );
    await Promise.all(acks);
    // then: one commit, and every acknowledgement found all ten lines in the file
    expect(log.events).toEqual(['commit 10']);
    const all = Array.from({ length: 10 }, (_, i) => `line ${i}\n`).join('');
    expect(seen).toEqual(Array(10).fill(all));
  });

  it('keeps one commit in flight: what comes meanwhile is the next batch, committed in order', async () => {
    // given: a commit in flight
    const first = log.append('a');
    await new Promise((r) => setImmediate(r));
    // when: appends arrive while it runs
    const later = [log.append('b'), log.append('c')];
    await Promise.all([first, ...later]);
    // then
    expect(log.events).toEqual(['commit 1', 'commit 2']);
    expect(content()).toBe('a\nb\nc\n');
  });

  it('on a failure: undoes the torn write before any append hears, rejects them all with one error, refuses until cleared', async () => {
    // given
    await log.append('kept');
    log.tearNext = true;
    const order: string[] = [];
    // when
    const failed = [log.append('x'), log.append('y')].map((p) =>
      p.then(
        () => null,
        (err: unknown) => {
          order.push(`reject saw ${JSON.stringify(content())}`);
          return err;
        },
      ),
    );
    const errors = await Promise.all(failed);
    // then
    expect(errors[0]).toBeInstanceOf(PersistenceError);
    expect(errors[1]).toBe(errors[0]);
    expect((errors[0] as PersistenceError).code).toBe('EIO');
    expect(log.events).toEqual(['commit 1', 'commit 2', 'undo 2']);
    expect(order).toEqual(['reject saw "kept\\n"', 'reject saw "kept\\n"']);
    await expect(log.append('refused')).rejects.toBe(errors[0]);
    expect(log.commit.failures).toBe(1);
    // when cleared: appends go again
    log.commit.clear();
    await log.append('again');
    expect(content()).toBe('kept\nagain\n');
  });

  it('a failure from elsewhere (a background fsync) rejects what is pending, with no batch to undo', async () => {
    const pending = log.append('p');
    await log.commit.fail(Object.assign(new Error('fsync'), { code: 'EIO' }));
    await expect(pending).rejects.toThrow(/line log: fsync/);
    expect(log.events).toEqual(['undo none']);
    expect(content()).toBe('');
  });
});

function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}
