import * as path from 'node:path';
import { createApp, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { APP_MODULE, Count, cli, filesOf, Put, redisCheckAof, manifestOf, tempDir } from './helpers';

const V1_MODULE = path.join(__dirname, 'support/app-v1.ts');
const V2_MODULE = path.join(__dirname, 'support/app-v2.ts');

/** An AOF log written by projections version 1: n = 5 and a, compacted at seq 2, then n += 3. */
async function versionOneLog(dir: string): Promise<void> {
  const app = await createApp({
    ...fixtures.conformanceClasses,
    store: new AofStore({ dir, appendfsync: 'always' }),
    logger: silentLogger,
    projectionsVersion: 1,
  });
  await app.execute(new Count('n', 5));
  await app.execute(new Put('a', 1));
  await app.compact();
  await app.execute(new Count('n', 3));
  await app.close();
}

describe('appendonly and the projections version of a snapshot', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('info and cat show it', async () => {
    // given
    await versionOneLog(dir);
    // when
    const info = cli(['info', dir]);
    const json = JSON.parse(cli(['info', dir, '--json']).stdout);
    const cat = cli(['cat', dir]);
    const catJson = cli(['cat', dir, '--json']);
    // then
    expect(info.stdout).toMatch(/^snapshot: up to seq 2, 2 keys, projections version 1$/m);
    expect(json.snapshot).toEqual({ seq: 2, keys: 2, projectionsVersion: '1' });
    expect(cat.stdout.split('\n')[0]).toBe('snapshot up to seq 2 (projections version 1)');
    expect(JSON.parse(catJson.stdout.split('\n')[0])).toEqual({
      kind: 'snapshot',
      seq: 2,
      projectionsVersion: '1',
    });
  });

  it('convert carries it: aof → sqlite → aof, each copy loads under that version as it is, and refuses another', async () => {
    // given
    const src = path.join(dir, 'src');
    await versionOneLog(src);
    const db = path.join(dir, 'copy.db');
    const back = path.join(dir, 'back');
    // when
    expect(cli(['convert', src, db, '--yes']).status).toBe(0);
    expect(cli(['convert', db, back, '--yes']).status).toBe(0);
    // then: the same records, version included
    const lines = (p: string) => cli(['cat', p, '--json']).stdout;
    expect(lines(db)).toBe(lines(src));
    expect(lines(back)).toBe(lines(src));
    expect(lines(back)).toContain('"projectionsVersion":"1"');
    expect(redisCheckAof([manifestOf(back)]).status).toBe(0);
    // and an app of version 1 loads the copy's snapshot as it is, one of version 2 refuses it
    const open = (projectionsVersion: number) =>
      createApp({
        ...fixtures.conformanceClasses,
        store: new SqliteWalStore({ file: db }),
        logger: silentLogger,
        projectionsVersion,
      });
    const one = await open(1);
    expect(one.stats()).toMatchObject({ entriesReplayed: 2, groupsReplayed: 1 });
    await one.close();
    await expect(open(2)).rejects.toMatchObject({ code: 'PROJECTIONS_VERSION', snapshotVersion: '1' });
  });

  it('rewrite records --app’s version, or, when it gives none, keeps the snapshot’s', async () => {
    // given
    await versionOneLog(dir);
    // when: --app without a version
    const kept = cli(['rewrite', dir, '--app', APP_MODULE, '--yes']);
    // then
    expect(kept.status).toBe(0);
    expect(cli(['cat', dir]).stdout.split('\n')[0]).toBe('snapshot up to seq 3 (projections version 1)');
    // when: --app of version 1, after one more command
    const app = await createApp({
      ...fixtures.conformanceClasses,
      store: new AofStore({ dir }),
      logger: silentLogger,
      projectionsVersion: 1,
    });
    await app.execute(new Count('n', 1));
    await app.close();
    expect(cli(['rewrite', dir, '--app', V1_MODULE, '--yes']).status).toBe(0);
    expect(cli(['cat', dir]).stdout.split('\n')[0]).toBe('snapshot up to seq 4 (projections version 1)');
  });

  it('rewrite with --app of another version refuses, naming both, and leaves the log as it was', async () => {
    // given
    await versionOneLog(dir);
    const before = filesOf(dir);
    // when
    const r = cli(['rewrite', dir, '--app', V2_MODULE, '--yes']);
    // then
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/built by projections version "1", this app's projections are version "2"/);
    expect(filesOf(dir)).toEqual(before);
  });
});
