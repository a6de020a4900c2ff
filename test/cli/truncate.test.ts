import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  aofApp,
  aofState,
  backups,
  cli,
  cliAsync,
  FlushAll,
  manualClock,
  manifestOf,
  Put,
  PutMany,
  redisCheckAof,
  sqliteApp,
  sqliteState,
  tempDir,
} from './helpers';

const T0 = 1_764_000_000_000;

describe('appendonly truncate', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  async function history(options: { aofTimestamps?: boolean; compact?: boolean } = {}): Promise<void> {
    const clock = manualClock(T0);
    const app = await aofApp(
      { dir, appendfsync: 'always', aofTimestamps: options.aofTimestamps ?? false },
      clock,
    );
    await app.execute(new Put('a', 1)); // seq 1, T0
    if (options.compact) await app.compact();
    clock.set(T0 + 10_000);
    await app.execute(
      new PutMany([
        ['b', 2],
        ['c', 3],
      ]),
    ); // seq 2-3, T0+10 s
    clock.set(T0 + 20_000);
    await app.execute(new Put('a', 'late')); // seq 4, T0+20 s
    await app.close();
  }

  it('--to-seq keeps the commands up to N (whole commands only), with a backup; refuses a seq inside a command', async () => {
    await history({ compact: true });
    const inside = cli(['truncate', dir, '--to-seq', '2', '--yes']);
    expect(inside.status).toBe(2);
    expect(inside.stderr).toContain('use --to-seq 1 or --to-seq 3');
    const before = cli(['truncate', dir, '--to-seq', '0', '--yes']);
    expect(before.status).toBe(1);
    expect(before.stderr).toContain('compacted away');

    const r = cli(['truncate', dir, '--to-seq', '3', '--yes']);
    expect(r.stderr).toMatch(/backup: .*truncate/);
    expect(r.status).toBe(0);
    expect(await aofState(dir)).toEqual({ a: 1, b: 2, c: 3 });
    expect(redisCheckAof([manifestOf(dir)]).status).toBe(0);
    expect(cli(['truncate', dir, '--to-seq', '3', '--yes']).stdout).toContain('nothing to cut');
    expect(backups(dir)).toHaveLength(1);
  });

  it('--to-timestamp cuts at the first #TS later than T, as redis-check-aof --truncate-to-timestamp', async () => {
    await history({ aofTimestamps: true });
    const t = Math.floor(T0 / 1000) + 15;
    const copy = path.join(dir, 'copy');
    fs.cpSync(path.join(dir, 'appendonlydir'), path.join(copy, 'appendonlydir'), { recursive: true });
    const theirs = redisCheckAof(['--truncate-to-timestamp', String(t), manifestOf(copy)]);
    expect(theirs.stdout).toContain('Successfully truncated AOF');
    const r = cli(['truncate', dir, '--to-timestamp', String(t), '--yes']);
    expect(r.status).toBe(0);
    const incr = 'appendonlydir/appendonly.aof.1.incr.aof';
    expect(fs.readFileSync(path.join(dir, incr)).equals(fs.readFileSync(path.join(copy, incr)))).toBe(true);
    expect(await aofState(dir)).toEqual({ a: 1, b: 2, c: 3 });
    expect(cli(['check', dir]).status).toBe(0);
  });

  it('--to-timestamp on a log without #TS says so and changes nothing', async () => {
    await history();
    const r = cli(['truncate', dir, '--to-timestamp', '1', '--yes']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('no #TS annotations');
    expect(r.stderr).toContain('aofTimestamps');
    expect(await aofState(dir)).toEqual({ a: 'late', b: 2, c: 3 });
    expect(backups(dir)).toEqual([]);
  });

  it('cuts inside an earlier incr file and drops the later ones from the manifest (they stay in the backup)', async () => {
    // Two incr files, as a compaction that failed after switching files leaves them.
    let app = await aofApp({ dir, appendfsync: 'always' });
    await app.execute(new Put('a', 1)); // seq 1
    await app.execute(new Put('b', 2)); // seq 2
    await app.close();
    const manifest = manifestOf(dir);
    fs.appendFileSync(manifest, 'file appendonly.aof.2.incr.aof seq 2 type i startseq 3\n');
    fs.writeFileSync(path.join(dir, 'appendonlydir/appendonly.aof.2.incr.aof'), '');
    app = await aofApp({ dir, appendfsync: 'always' });
    await app.execute(new Put('c', 3)); // seq 3, in the second file
    await app.close();
    expect(await aofState(dir)).toEqual({ a: 1, b: 2, c: 3 });

    const r = cli(['truncate', dir, '--to-seq', '1', '--yes']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('removed appendonly.aof.2.incr.aof');
    expect(fs.readFileSync(manifest, 'utf8')).not.toContain('appendonly.aof.2.incr.aof');
    expect(fs.existsSync(path.join(dir, 'appendonlydir/appendonly.aof.2.incr.aof'))).toBe(false);
    const [backup] = backups(dir);
    expect(fs.readdirSync(path.join(dir, backup)).sort()).toEqual([
      'appendonly.aof.1.incr.aof',
      'appendonly.aof.2.incr.aof',
      'appendonly.aof.manifest',
    ]);
    expect(await aofState(dir)).toEqual({ a: 1 });
    expect(redisCheckAof([manifest]).status).toBe(0);
  });

  it('asks for exactly one point', () => {
    expect(cli(['truncate', dir, '--yes']).status).toBe(2);
    expect(cli(['truncate', dir, '--to-seq', '1', '--to-timestamp', '2', '--yes']).status).toBe(2);
  });

  it('on a .db store, by seq and by time', async () => {
    const db = path.join(dir, 'app.db');
    const clock = manualClock(T0);
    const app = await sqliteApp(db, clock);
    await app.execute(new Put('a', 1));
    clock.set(T0 + 10_000);
    await app.execute(
      new PutMany([
        ['b', 2],
        ['c', 3],
      ]),
    );
    clock.set(T0 + 20_000);
    await app.execute(new Put('a', 'late'));
    await app.close();
    expect(cli(['truncate', db, '--to-seq', '2', '--yes']).status).toBe(2);
    const r = cli(['truncate', db, '--to-timestamp', String(Math.floor(T0 / 1000) + 15), '--yes']);
    expect(r.stderr).toMatch(/backup: .*app\.db\.backup-.*truncate/);
    expect(r.status).toBe(0);
    expect(await sqliteState(db)).toEqual({ a: 1, b: 2, c: 3 });
    expect(cli(['truncate', db, '--to-seq', '1', '--yes']).status).toBe(0);
    expect(await sqliteState(db)).toEqual({ a: 1 });
    expect(cli(['check', db]).status).toBe(0);
  });
});

describe('destructive commands refuse while a live process holds the store', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it.each([
    ['rewrite', [] as string[]],
    ['truncate', ['--to-seq', '1']],
    ['strip', ['--type', 'FLUSHALL']],
  ])('%s: exit 1, naming the holder; no backup, nothing changed', async (command, extra) => {
    const app = await aofApp({ dir, appendfsync: 'always' });
    try {
      await app.execute(new Put('a', 1));
      await app.execute(new FlushAll());
      const incr = path.join(dir, 'appendonlydir/appendonly.aof.1.incr.aof');
      const before = fs.readFileSync(incr);
      const r = await cliAsync([command, dir, ...extra, '--yes']);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`locked by process ${process.pid}`);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(backups(dir)).toEqual([]);
      expect(fs.readFileSync(incr).equals(before)).toBe(true);
    } finally {
      await app.close();
    }
  });
});
