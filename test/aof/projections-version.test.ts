import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createApp, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { fixtures } from 'appendonly/testing';
import { formatManifest, parseManifest } from '../../adapters/aof/manifest';
import { logDir, recordingLogger, state, tempDir } from './helpers';

const { Put, Count, conformanceClasses } = fixtures;

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
});
