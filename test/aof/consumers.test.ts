import {
  createApp,
  type EventGroup,
  type EventStore,
  recordingSink,
  type ReplayedRecord,
  silentLogger,
} from 'appendonly';
import { AofStore, type FileSystem, nodeFileSystem } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../support/helpers';
import { redisCheckAof } from '../cli/helpers';

const { Put, conformanceClasses } = fixtures;

/** The node file system, counting the bytes read. */
function countingFs(): FileSystem & { bytesRead: number } {
  const fs = {
    ...nodeFileSystem,
    bytesRead: 0,
    read: async (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => {
      const n = await nodeFileSystem.read(fd, buffer, offset, length, position);
      fs.bytesRead += n;
      return n;
    },
  };
  return fs;
}

function seqsOf(groups: readonly EventGroup[]): number[] {
  return groups.flatMap((g) => g.events.map((_, i) => g.seq + i));
}

describe('AofStore read (consumers)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir('aof-read');
  });
  afterEach(() => tmp.cleanup());

  it('starts from the sparse index near `after`, not from the start of the file', async () => {
    // given: a log of 3000 commands of 1 KB each (3 MB), reopened (the index built by the replay)
    const fs = countingFs();
    const writer = await createApp({
      ...conformanceClasses,
      store: new AofStore({ dir: tmp.dir }),
      logger: silentLogger,
    });
    const value = 'x'.repeat(1000);
    for (let i = 1; i <= 3000; i++) await writer.execute(new Put(`k${i}`, value));
    await writer.close();
    const store = new AofStore({ dir: tmp.dir, fs });
    const app = await createApp({ ...conformanceClasses, store, logger: silentLogger });
    // when: a page near the end is read
    fs.bytesRead = 0;
    const page = await store.read(2990, 5);
    // then: the right groups, reading one index step (64 KB) and a chunk at most, not 3 MB
    expect(seqsOf(page)).toEqual([2991, 2992, 2993, 2994, 2995]);
    expect(fs.bytesRead).toBeLessThan(1024 * 1024 + 128 * 1024);
    // and: every page agrees with replay({ after })
    const replayed: ReplayedRecord[] = [];
    await store.replay(recordingSink(replayed), { after: 1500 });
    const fromRead: number[] = [];
    for (let after = 1500; ; ) {
      const groups = await store.read(after, 97);
      if (groups.length === 0) break;
      fromRead.push(...seqsOf(groups));
      after = fromRead[fromRead.length - 1];
    }
    expect(fromRead).toEqual(replayed.map((r) => (r.kind === 'group' ? r.seq : -1)));
    await app.close();
  });

  it('reads across a compaction: history below the base (keepHistory), the new incr file after it', async () => {
    // given: 400 commands, a compaction, 400 more, on a store that keeps history
    const open = (): EventStore => new AofStore({ dir: tmp.dir, keepHistory: true });
    const app = await createApp({ ...conformanceClasses, store: open(), logger: silentLogger });
    for (let i = 1; i <= 400; i++) await app.execute(new Put(`k${i % 50}`, i));
    await app.compact();
    const more = Array.from({ length: 400 }, (_, i) => app.execute(new Put(`k${i % 50}`, i)));
    // when: a consumer starts from the start while the later commands arrive
    const seen: number[] = [];
    const sub = await app.subscribe('all', (e) => void seen.push(e.seq), { pageSize: 33 });
    await Promise.all(more);
    await sub.caughtUp();
    // then: every event once, in order, across history/, the base's files and the new incr file
    expect(seen).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
    await app.close();
  });

  it('a consumer further behind than maxConsumerLag is stale after a compaction: refused, naming the reset; commands go on', async () => {
    // given: a consumer stopped at seq 10, then 10 more commands and a compaction, maxConsumerLag 5
    const app = await createApp({
      ...conformanceClasses,
      store: new AofStore({ dir: tmp.dir, maxConsumerLag: 5 }),
      logger: silentLogger,
    });
    for (let i = 1; i <= 10; i++) await app.execute(new Put('a', i));
    const sub = await app.subscribe('slow', () => {});
    await sub.caughtUp();
    await sub.close();
    for (let i = 1; i <= 10; i++) await app.execute(new Put('a', i));
    await app.compact();
    // when / then: it is refused (its events were not kept), naming the way out; commands go on
    await expect(app.subscribe('slow', () => {})).rejects.toThrow(
      /consumer "slow": is stale: a compaction at seq 20 found it 10 events behind .*app\.resetConsumer\("slow", from\)/,
    );
    await app.execute(new Put('b', 1));
    await app.close();
  });

  it('keeps the files a consumer needs as type h manifest lines, and deletes each once it has passed it', async () => {
    // given: "slow" at seq 0, 3 compactions with 10 commands before each
    const logDir = path.join(tmp.dir, 'appendonlydir');
    const files = () =>
      fs
        .readdirSync(logDir)
        .filter((n) => n.endsWith('.aof'))
        .sort();
    const app = await createApp({
      ...conformanceClasses,
      store: new AofStore({ dir: tmp.dir }),
      logger: silentLogger,
    });
    await (await app.subscribe('slow', () => {})).close();
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 10; i++) await app.execute(new Put('a', c * 10 + i));
      await app.compact();
    }
    // then: the three replaced incr files are history lines of the manifest, the base and the
    // new incr file the only ones replayed; redis-check-aof passes the log
    const manifest = fs.readFileSync(path.join(logDir, 'appendonly.aof.manifest'), 'utf8');
    expect(manifest).toBe(
      'file appendonly.aof.3.base.aof seq 3 type b lastseq 30\n' +
        'file appendonly.aof.1.incr.aof seq 1 type h startseq 1\n' +
        'file appendonly.aof.2.incr.aof seq 2 type h startseq 11\n' +
        'file appendonly.aof.3.incr.aof seq 3 type h startseq 21\n' +
        'file appendonly.aof.4.incr.aof seq 4 type i startseq 31\n',
    );
    expect(redisCheckAof([path.join(logDir, 'appendonly.aof.manifest')]).stdout).toMatch(/is valid/);
    // and: a replay after seq 15 reads them in place of the base, as a consumer's read does
    const store = (app as unknown as { store: EventStore }).store;
    const replayed: ReplayedRecord[] = [];
    await store.replay(recordingSink(replayed), { after: 15 });
    expect(replayed.map((r) => (r.kind === 'group' ? r.seq : r.kind))).toEqual(
      Array.from({ length: 15 }, (_, i) => 16 + i),
    );
    // when: it has handled up to seq 15, and the log is compacted again
    await store.saveConsumer!({ name: 'slow', position: 15, parked: [] });
    await app.execute(new Put('b', 31));
    await app.compact();
    // then: the file it has passed is deleted; those holding 16..31 are kept
    expect(files()).toEqual([
      'appendonly.aof.2.incr.aof',
      'appendonly.aof.3.incr.aof',
      'appendonly.aof.4.base.aof',
      'appendonly.aof.4.incr.aof',
      'appendonly.aof.5.incr.aof',
    ]);
    // when: it catches up, and the log is compacted once more
    await app.execute(new Put('b', 32));
    const seen: number[] = [];
    const sub = await app.subscribe('slow', (e) => void seen.push(e.seq));
    await sub.caughtUp();
    await sub.close();
    await app.compact();
    // then: it was handed 16..32, and nothing is kept any more
    expect(seen).toEqual(Array.from({ length: 17 }, (_, i) => 16 + i));
    expect(files()).toEqual(['appendonly.aof.5.base.aof', 'appendonly.aof.6.incr.aof']);
    await app.close();
  });

  it('numbers a kept incr file the manifest gives no startseq (written by hand or by Redis) by reading the one before', async () => {
    // given: 10 commands, then a second incr file of 5 SETs written by hand, named without startseq
    const logDir = path.join(tmp.dir, 'appendonlydir');
    const first = await createApp({
      ...conformanceClasses,
      store: new AofStore({ dir: tmp.dir }),
      logger: silentLogger,
    });
    for (let i = 1; i <= 10; i++) await first.execute(new Put('a', i));
    await first.close();
    const resp = (...args: string[]) =>
      `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    fs.writeFileSync(
      path.join(logDir, 'appendonly.aof.2.incr.aof'),
      Array.from({ length: 5 }, (_, i) => resp('SET', `h${i}`, String(11 + i))).join(''),
    );
    fs.appendFileSync(
      path.join(logDir, 'appendonly.aof.manifest'),
      'file appendonly.aof.2.incr.aof seq 2 type i\n',
    );
    const app = await createApp({
      ...conformanceClasses,
      store: new AofStore({ dir: tmp.dir }),
      logger: silentLogger,
    });
    const store = (app as unknown as { store: EventStore }).store;
    await store.saveConsumer!({ name: 'slow', position: 12, parked: [] });
    // when
    await app.compact();
    // then: the hand-written file is kept from seq 11, the first one is gone, and the consumer
    // is handed 13..15 from it
    const manifest = fs.readFileSync(path.join(logDir, 'appendonly.aof.manifest'), 'utf8');
    expect(manifest).toMatch(/^file appendonly\.aof\.2\.incr\.aof seq 2 type h startseq 11$/m);
    expect(fs.existsSync(path.join(logDir, 'appendonly.aof.1.incr.aof'))).toBe(false);
    const seen: number[] = [];
    const sub = await app.subscribe('slow', (e) => void seen.push(e.seq));
    await sub.caughtUp();
    expect(seen).toEqual([13, 14, 15]);
    await app.close();
  });
});
