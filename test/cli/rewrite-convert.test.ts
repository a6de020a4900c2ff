import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  APP_MODULE,
  aofApp,
  aofState,
  backups,
  Count,
  cli,
  FlushAll,
  logDir,
  manifestOf,
  Put,
  PutMany,
  Remove,
  redisCheckAof,
  sqliteApp,
  sqliteState,
  tempDir,
} from './helpers';

async function builtinHistory(dir: string): Promise<void> {
  const app = await aofApp({ dir, appendfsync: 'always' });
  await app.execute(new Put('a', 1));
  await app.execute(new FlushAll());
  await app.execute(
    new PutMany([
      ['b', 2],
      ['c', [3]],
    ]),
  );
  await app.execute(new Remove(['b']));
  await app.execute(new Put('d', 'ü'));
  await app.close();
}

describe('appendonly rewrite', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('gives the same log as app.compact() on a log of built-in events, after a backup', async () => {
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    await builtinHistory(a);
    fs.cpSync(a, b, { recursive: true });
    const r = cli(['rewrite', a, '--yes']);
    expect(r.stderr).toMatch(/backup: .*rewrite/);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('2 keys up to seq 6');
    const app = await aofApp({ dir: b });
    await app.compact();
    await app.close();
    const names = (d: string) => fs.readdirSync(logDir(d)).sort();
    expect(names(a)).toEqual(names(b));
    for (const n of names(a))
      expect(fs.readFileSync(path.join(logDir(a), n))).toEqual(fs.readFileSync(path.join(logDir(b), n)));
    expect(await aofState(a)).toEqual({ c: [3], d: 'ü' });
    expect(redisCheckAof([manifestOf(a)]).status).toBe(0);
    // The backup holds the files the rewrite replaced.
    const [backup] = backups(a);
    expect(fs.readdirSync(path.join(a, backup)).sort()).toEqual([
      'appendonly.aof.1.incr.aof',
      'appendonly.aof.manifest',
    ]);
  });

  it('refuses a log of user events without --app, naming the types; with --app, the projections give the state', async () => {
    const app = await aofApp({ dir, appendfsync: 'always' });
    await app.execute(new Count('n', 2));
    await app.execute(new Count('n', 3));
    await app.execute(new Put('x', 1));
    await app.close();
    const refused = cli(['rewrite', dir, '--yes']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('Counted');
    expect(refused.stderr).toContain('--app');
    expect(backups(dir)).toEqual([]);
    const r = cli(['rewrite', dir, '--app', APP_MODULE, '--yes']);
    expect(r.status).toBe(0);
    expect(await aofState(dir)).toEqual({ n: 5, x: 1 });
    expect(cli(['cat', dir, '--json']).stdout).not.toContain('Counted');
  });

  it('compacts a .db store the same way', async () => {
    const db = path.join(dir, 'app.db');
    const app = await sqliteApp(db);
    await app.execute(new Count('n', 2));
    await app.execute(
      new PutMany([
        ['p', 1],
        ['q', 2],
      ]),
    );
    await app.close();
    const r = cli(['rewrite', db, '--app', APP_MODULE, '--yes']);
    expect(r.stderr).toMatch(/backup: .*app\.db\.backup-/);
    expect(r.status).toBe(0);
    expect(await sqliteState(db)).toEqual({ n: 2, p: 1, q: 2 });
    expect(cli(['info', db, '--json']).stdout).toContain(
      '"snapshot":{"seq":3,"keys":3,"projectionsVersion":null}',
    );
  });
});

describe('appendonly convert', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('aof → sqlite → aof: replayed states and `cat` compare equal, sequence numbers included', async () => {
    const src = path.join(dir, 'src');
    const app = await aofApp({ dir: src, appendfsync: 'always', aofTimestamps: true });
    await app.execute(new Put('a', 1));
    await app.execute(new Count('n', 2));
    await app.compact();
    await app.execute(
      new PutMany([
        ['b', 2],
        ['c', { d: null }],
      ]),
    );
    await app.execute(new Count('n', 5));
    await app.execute(new Remove(['a']));
    const want = Object.fromEntries([...app.state.entries()]);
    await app.close();

    const db = path.join(dir, 'copy.db');
    const back = path.join(dir, 'back');
    expect(cli(['convert', src, db, '--yes']).status).toBe(0);
    expect(cli(['convert', db, back, '--yes']).status).toBe(0);
    expect(await sqliteState(db)).toEqual(want);
    expect(await aofState(back)).toEqual(want);
    const lines = (p: string) => cli(['cat', p, '--json']).stdout;
    expect(lines(db)).toBe(lines(src));
    expect(lines(back)).toBe(lines(src));
    expect(redisCheckAof([manifestOf(back)]).status).toBe(0);
  });

  it('refuses a non-empty target', async () => {
    await builtinHistory(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'full.db'), 'something');
    fs.mkdirSync(path.join(dir, 'full'));
    fs.writeFileSync(path.join(dir, 'full', 'keep.txt'), 'mine');
    const toDb = cli(['convert', path.join(dir, 'src'), path.join(dir, 'full.db'), '--yes']);
    expect(toDb.status).toBe(2);
    expect(toDb.stderr).toContain('refusing to overwrite');
    expect(fs.readFileSync(path.join(dir, 'full.db'), 'utf8')).toBe('something');
    const toDir = cli(['convert', path.join(dir, 'src'), path.join(dir, 'full'), '--yes']);
    expect(toDir.status).toBe(2);
    expect(fs.readdirSync(path.join(dir, 'full'))).toEqual(['keep.txt']);
  });
});
