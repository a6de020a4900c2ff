import { fixtures } from 'appendonly/testing';
import { FaultyFileSystem } from './faulty-fs';
import { openApp, tempDir } from './helpers';

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

  it('always: one command at a time is written and fsynced before its acknowledgement, each time', async () => {
    const fs = new FaultyFileSystem();
    const { app } = await openApp({ dir, appendfsync: 'always', fs });
    const from = fs.journal.length;
    for (let i = 0; i < 5; i++) {
      await app.execute(new Put('k', i));
      fs.journal.push(`ack:${i}`);
    }
    expect(trace(fs, from)).toEqual(
      Array.from({ length: 5 }, (_, i) => ['write', 'fdatasync', `ack:${i}`]).flat(),
    );
    await app.close();
  });

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
    expect(app.stats()).toMatchObject({
      appendfsync: 'everysec',
      pendingBioFsync: 0,
      delayedFsync: 0,
      lastWriteStatus: 'ok',
    });
    await app.close();
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
