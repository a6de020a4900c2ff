import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import 'reflect-metadata';
import {
  createApp,
  KeyValueState,
  On,
  Projection,
  type ProjectionState,
  type ReplayedRecord,
  recordingSink,
  silentLogger,
} from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';
import { formatManifest, parseManifest } from '../../adapters/aof/manifest';
import { AofLogWriter } from '../../adapters/aof/tools/log-writer';
import { logDir, recordingLogger, state, tempDir } from './helpers';

const { Put, PutMany, Count, Counted, conformanceClasses } = fixtures;

/** Release 2's projections: each `Counted` counts tenfold. */
@Projection()
class TenfoldCounters {
  @On(Counted)
  counted(e: typeof Counted.Event, kv: ProjectionState) {
    kv.set(e.data.key, ((kv.get(e.data.key) as number | undefined) ?? 0) + 10 * e.data.by);
  }
}
const release2 = { handlers: conformanceClasses.handlers, projections: [TenfoldCounters] };

describe('AofStore: the projections version of a base', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  const manifestPath = () => path.join(logDir(dir), 'appendonly.aof.manifest');
  const open = (projectionsVersion?: string, logger = silentLogger) =>
    createApp({ ...conformanceClasses, store: new AofStore({ dir }), logger, projectionsVersion });

  /** Version `version` writes two commands, compacts, and writes one more. */
  async function compactedBy(version: string): Promise<void> {
    const app = await open(version);
    await app.execute(new Count('n', 2));
    await app.execute(new Put('a', 1));
    await app.compact();
    await app.execute(new Count('n', 3));
    await app.close();
  }

  it('is a pair of the base line in the manifest, which redis-check-aof accepts', async () => {
    // when
    await compactedBy('2025.1');
    // then
    const manifest = fs.readFileSync(manifestPath(), 'utf8');
    expect(manifest).toMatch(/^file appendonly\.aof\.1\.base\.aof seq 1 type b lastseq 2 projver 2025\.1\n/);
    const r = spawnSync('redis-check-aof', [manifestPath()], { encoding: 'utf8' });
    if (r.error)
      throw new Error(`redis-check-aof could not run (apt-get install redis-tools): ${r.error.message}`);
    expect(r.stdout + r.stderr).toContain('All AOF files and manifest are valid');
    expect(r.status).toBe(0);
  });

  it('is dropped by code that does not know it (Redis, an older appendonly): the base then loads under any version', async () => {
    // given: the manifest as a rewrite by such code leaves it
    await compactedBy('1');
    const manifest = fs.readFileSync(manifestPath(), 'utf8');
    fs.writeFileSync(manifestPath(), manifest.replace(' projver 1', ''));
    const logger = recordingLogger();
    // when
    const app = await open('2', logger);
    // then: an unversioned snapshot, loaded as it is
    expect(state(app)).toEqual({ n: 5, a: 1 });
    expect(app.stats()).toMatchObject({ entriesReplayed: 2, groupsReplayed: 1 });
    expect(logger.lines).toContainEqual(
      expect.stringMatching(/has no projections version; loaded it under version "2"/),
    );
    await app.close();
  });

  it('parses and formats as it is, and is never written quoted or split', () => {
    const text =
      'file a.1.base.aof seq 1 type b lastseq 9 projver v2+x:1\nfile a.1.incr.aof seq 1 type i startseq 10\n';
    const m = parseManifest(Buffer.from(text), 'm');
    expect(m.base).toEqual({
      name: 'a.1.base.aof',
      seq: 1,
      type: 'b',
      lastSeq: 9,
      projectionsVersion: 'v2+x:1',
    });
    expect(formatManifest(m)).toBe(text);
    expect(() => formatManifest({ ...m, base: { ...m.base!, projectionsVersion: 'two words' } })).toThrow(
      /cannot be written in an AOF manifest/,
    );
  });

  describe('with keepHistory', () => {
    const openKeeping = (release: 1 | 2, logger = silentLogger) =>
      createApp({
        ...(release === 1 ? conformanceClasses : release2),
        store: new AofStore({ dir, keepHistory: true }),
        logger,
        projectionsVersion: release,
      });

    /** Release 1 over two compactions: n = 1 + 2, a multi-event command, n += 4, n += 8 after. */
    async function release1Log(): Promise<void> {
      const app = await openKeeping(1);
      await app.execute(new Count('n', 1));
      await app.execute(new Count('n', 2));
      await app.compact();
      await app.execute(
        new PutMany([
          ['p', 1],
          ['q', 2],
        ]),
      );
      await app.execute(new Count('n', 4));
      await app.compact();
      await app.execute(new Count('n', 8));
      await app.close();
    }

    /** The store's own replay after `after`, as a tool would read it. */
    async function replayAfter(after: number): Promise<ReplayedRecord[]> {
      const store = new AofStore({ dir });
      await store.open({
        snapshots: { takeSnapshot: () => new KeyValueState().takeSnapshot(0) },
        logger: silentLogger,
        clock: { now: Date.now },
      });
      const out: ReplayedRecord[] = [];
      try {
        await store.replay(recordingSink(out), { after });
      } finally {
        await store.close();
      }
      return out;
    }
    const seqs = (records: ReplayedRecord[]) => records.map((r) => (r.kind === 'group' ? r.seq : r.kind));
    const history = (name: string) => path.join(logDir(dir), 'history', name);

    it('another version rebuilds from the incr files in history/, with a warning naming both', async () => {
      // given
      await release1Log();
      const logger = recordingLogger();
      // when
      const app = await openKeeping(2, logger);
      // then
      expect(state(app)).toEqual({ n: 150, p: 1, q: 2 });
      expect(app.stats()).toMatchObject({ entriesReplayed: 0, groupsReplayed: 5, lastSeq: 6 });
      expect(logger.lines).toContainEqual(
        expect.stringMatching(
          /up to seq 5 was built by projections version "1", and this app's projections are version "2"/,
        ),
      );
      // and it goes on from there: its next command is seq 7, its compaction records version 2
      expect((await app.execute(new Count('n', 1))).firstSeq).toBe(7);
      await app.compact();
      await app.close();
      expect(fs.readFileSync(manifestPath(), 'utf8')).toMatch(/type b lastseq 7 projver 2\n/);
      const again = await openKeeping(2);
      expect(state(again)).toEqual({ n: 160, p: 1, q: 2 });
      expect(again.stats().groupsReplayed).toBe(0);
      await again.close();
    });

    it('replay({ after }) below the base reads the events it covers from history/, then the current files', async () => {
      // given
      await release1Log();
      // when
      const records = await replayAfter(1);
      // then
      expect(seqs(records)).toEqual([2, 3, 5, 6]);
      expect(records[1]).toMatchObject({ kind: 'group', seq: 3, events: [{ type: 'SET' }, { type: 'SET' }] });
    });

    it('a history that lacks an incr file is LOG_COMPACTED, and another version refuses', async () => {
      // given: the first incr file is gone from history/
      await release1Log();
      fs.rmSync(history('appendonly.aof.1.incr.aof'));
      // when
      const attempt = replayAfter(0);
      // then
      await expect(attempt).rejects.toMatchObject({ code: 'LOG_COMPACTED', after: 0, firstAvailable: 6 });
      await expect(openKeeping(2)).rejects.toMatchObject({
        code: 'PROJECTIONS_VERSION',
        snapshotVersion: '1',
      });
    });

    it('a log that began with a base (a converted one) is not read from history/ as if it began with events', async () => {
      // given: a log written by convert (a base up to seq 10, its first incr file from seq 11), then compacted
      const writer = new AofLogWriter(dir);
      await writer.snapshot(10, new Map([['n', 10]]), '1');
      await writer.group({ seq: 11, time: 0, events: [Counted({ key: 'n', by: 1 })] });
      await writer.close();
      const app = await openKeeping(1);
      await app.compact();
      await app.execute(new Count('n', 1));
      await app.close();
      expect(fs.existsSync(history('appendonly.aof.1.incr.aof'))).toBe(true);
      // when
      const attempt = replayAfter(0);
      // then: the history holds seq 11 only, not 1 to 11: no chain
      await expect(attempt).rejects.toMatchObject({ code: 'LOG_COMPACTED', firstAvailable: 12 });
      await expect(openKeeping(2)).rejects.toMatchObject({ code: 'PROJECTIONS_VERSION' });
    });
  });
});
