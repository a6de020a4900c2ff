import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  aofApp,
  aofState,
  analyzed,
  backups,
  Count,
  cli,
  cliAsync,
  logDir,
  manifestOf,
  Put,
  PutMany,
  Remove,
  redisCheckAof,
  tempDir,
} from './helpers';

/** A log of a base and an incr file, with #TS annotations, in `dir`. */
async function writeLog(dir: string): Promise<void> {
  const app = await aofApp({ dir, appendfsync: 'always', aofTimestamps: true });
  await app.execute(new Put('a', 'x\r\ny'));
  await app.execute(
    new PutMany([
      ['b', 1],
      ['c', 'ü'],
    ]),
  );
  await app.compact();
  await app.execute(new Count('n', 3));
  await app.execute(
    new PutMany([
      ['d', 4],
      ['e', 5],
    ]),
  );
  await app.execute(new Remove(['a']));
  await app.close();
}

const INCR = 'appendonly.aof.2.incr.aof';

describe('appendonly check', () => {
  let dir: string;
  let cleanup: () => void;
  let clean: Buffer;
  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    await writeLog(dir);
    clean = fs.readFileSync(path.join(logDir(dir), INCR));
  });
  afterEach(() => cleanup());

  it('reports a valid log as redis-check-aof does (same ok_up_to and ok_up_to_line per file), exit 0', () => {
    const ours = cli(['check', dir]);
    const theirs = redisCheckAof([manifestOf(dir)]);
    expect(theirs.status).toBe(0);
    expect(ours.status).toBe(0);
    expect(analyzed(ours.stdout)).toEqual(analyzed(theirs.stdout));
    expect(analyzed(ours.stdout).size).toBe(2);
    expect(ours.stdout).toContain('all 2 files of the log are valid');
  });

  const multiStart = (b: Buffer) => b.indexOf('*1\r\n$5\r\nMULTI', 0, 'latin1');
  const damages: [string, (b: Buffer) => Buffer][] = [
    ['a truncated record', (b) => b.subarray(0, b.length - 20)],
    [
      'a bad length',
      (b) => Buffer.from(b.toString('latin1').replace('$18\r\n{"key":"n"', '$11\r\n{"key":"n"'), 'latin1'),
    ],
    [
      'garbage bytes in the middle',
      (b) =>
        Buffer.concat([b.subarray(0, multiStart(b)), Buffer.from('garbage\r\n'), b.subarray(multiStart(b))]),
    ],
    ['garbage bytes at the end', (b) => Buffer.concat([b, Buffer.from('\x00\x00\x00junk')])],
    [
      'an unfinished MULTI',
      (b) =>
        Buffer.concat([b, Buffer.from('*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n')]),
    ],
  ];
  it.each(damages)(
    'agrees with redis-check-aof on %s: same last good offset and line, exit 1',
    (name, damage) => {
      const damaged = damage(clean);
      expect(damaged.equals(clean)).toBe(false);
      fs.writeFileSync(path.join(logDir(dir), INCR), damaged);
      const theirs = redisCheckAof([manifestOf(dir)]);
      const ours = cli(['check', dir]);
      expect(theirs.status).toBe(1);
      expect(ours.status).toBe(1);
      const t = analyzed(theirs.stdout);
      const o = analyzed(ours.stdout);
      expect(t.get(INCR)).toBeDefined();
      expect(o.get(INCR)).toEqual(t.get(INCR));
      expect(o.get(INCR)!.okUpTo).toBeLessThan(damaged.length);
      // redis-check-aof counts a group's @env record as a command of its own; a torn group is cut
      // whole, so where an envelope is all that is left of it, ours ends before the envelope.
      const good = t.get(INCR)!.okUpTo;
      const dangling =
        name === 'a truncated record' &&
        /\*[2-5]\r\n\$4\r\n@env\r\n(?:\$\d+\r\n[^\r]*\r\n){1,4}$/.exec(
          damaged.subarray(0, good).toString('latin1'),
        );
      expect(ours.stdout).toContain(`the last good offset is ${good - (dangling ? dangling[0].length : 0)}`);
    },
  );

  it('finds a changed byte that redis-check-aof cannot see (the #CRC), and says so', () => {
    const at = clean.indexOf('"by":3', 0, 'latin1') + 5;
    const damaged = Buffer.from(clean);
    damaged[at] = '7'.charCodeAt(0);
    fs.writeFileSync(path.join(logDir(dir), INCR), damaged);
    expect(redisCheckAof([manifestOf(dir)]).status).toBe(0);
    const ours = cli(['check', dir]);
    expect(ours.status).toBe(1);
    expect(ours.stdout).toContain("appendonly's #CRC check; redis-check-aof does not verify checksums");
  });

  it('--fix --yes cuts the damaged tail only, keeps it in a side file, backs up first; the log loads after', async () => {
    const tail = Buffer.from('*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$1\r\n1\r\n');
    fs.writeFileSync(path.join(logDir(dir), INCR), Buffer.concat([clean, tail]));
    const r = cli(['check', dir, '--fix', '--yes']);
    expect(r.stderr).toMatch(/backup: .*check-fix/);
    expect(r.status).toBe(0);
    expect(fs.readFileSync(path.join(logDir(dir), INCR)).equals(clean)).toBe(true);
    const side = fs.readdirSync(logDir(dir)).filter((n) => n.startsWith(`${INCR}.cut-`));
    expect(side).toHaveLength(1);
    expect(fs.readFileSync(path.join(logDir(dir), side[0])).equals(tail)).toBe(true);
    const [backup] = backups(dir);
    expect(fs.readFileSync(path.join(dir, backup, INCR)).equals(Buffer.concat([clean, tail]))).toBe(true);
    expect(redisCheckAof([manifestOf(dir)]).status).toBe(0);
    expect(cli(['check', dir]).status).toBe(0);
    expect(await aofState(dir)).toEqual({ b: 1, c: 'ü', d: 4, e: 5, n: 3 });
  });

  it('a record only our reader refuses (bad JSON): the good part ends where its command starts, and --fix cuts there', async () => {
    const at = clean.indexOf('"by":3}', 0, 'latin1') + 6;
    const damaged = Buffer.from(clean);
    damaged[at] = 'X'.charCodeAt(0);
    fs.writeFileSync(path.join(logDir(dir), INCR), damaged);
    const r = cli(['check', dir]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('as JSON');
    // The Count command is the first of the incr file (its #TS line at offset 0).
    expect(r.stdout).toContain(`the last good offset is 0 of ${damaged.length}`);
    expect(cli(['check', dir, '--fix', '--yes']).status).toBe(0);
    expect(fs.statSync(path.join(logDir(dir), INCR)).size).toBe(0);
    expect(await aofState(dir)).toEqual({ a: 'x\r\ny', b: 1, c: 'ü' });
  });

  it('--fix asks on a terminal only: without one and without --yes it changes nothing, exit 2', () => {
    const damaged = clean.subarray(0, clean.length - 5);
    fs.writeFileSync(path.join(logDir(dir), INCR), damaged);
    const r = cli(['check', dir, '--fix']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('pass --yes');
    expect(fs.readFileSync(path.join(logDir(dir), INCR)).equals(damaged)).toBe(true);
    expect(backups(dir)).toEqual([]);
  });

  it('--fix refuses while a live process holds the store, naming it', async () => {
    fs.writeFileSync(path.join(logDir(dir), INCR), clean.subarray(0, clean.length - 5));
    // The app cuts the torn tail itself as it opens; damage the file again while it runs.
    const app = await aofApp({ dir, appendfsync: 'always' });
    try {
      fs.appendFileSync(path.join(logDir(dir), INCR), '*1\r\n$3\r\nDE');
      const r = await cliAsync(['check', dir, '--fix', '--yes']);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`refusing to repair the log: .*locked by process ${process.pid}`));
      expect(backups(dir)).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('refuses to cut a damaged file that is not the last one', () => {
    const base = path.join(logDir(dir), 'appendonly.aof.1.base.aof');
    fs.writeFileSync(base, fs.readFileSync(base).subarray(0, 30));
    const r = cli(['check', dir, '--fix', '--yes']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('is not the last file of the log');
  });
});

describe('appendonly check: a last command whose #CRC line is torn', () => {
  const FIRST_INCR = 'appendonly.aof.1.incr.aof';
  let dir: string;
  let cleanup: () => void;
  let incr: string;
  let full: Buffer;
  /** Where the last command's group (its #TS line) starts. */
  let lastStart: number;
  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    incr = path.join(logDir(dir), FIRST_INCR);
    const app = await aofApp({ dir, appendfsync: 'always', aofTimestamps: true });
    for (let i = 0; i < 199; i++) await app.execute(new Put(`k${i}`, i));
    lastStart = fs.statSync(incr).size;
    await app.execute(new Put('k199', 199));
    await app.close();
    full = fs.readFileSync(incr);
  });
  afterEach(() => cleanup());

  it.each([5, 7])(
    'reports it (%i bytes cut off) as damage only appendonly sees; --fix --yes cuts the command whole, backing up first',
    async (cutOff) => {
      const torn = full.subarray(0, full.length - cutOff);
      fs.writeFileSync(incr, torn);
      expect(redisCheckAof([manifestOf(dir)]).status).toBe(0);
      const r = cli(['check', dir]);
      expect(r.status).toBe(1);
      expect(r.stdout).toContain(
        `${FIRST_INCR}: the file ends in an incomplete record at byte offset ${lastStart}`,
      );
      expect(r.stdout).toContain(
        "[found by appendonly's #CRC check; redis-check-aof does not verify checksums",
      );
      expect(r.stdout).toContain(`the last good offset is ${lastStart} of ${torn.length}`);

      const fix = cli(['check', dir, '--fix', '--yes']);
      expect(fix.stderr).toMatch(/backup: .*check-fix/);
      expect(fix.status).toBe(0);
      expect(fs.readFileSync(incr).equals(full.subarray(0, lastStart))).toBe(true);
      const side = fs.readdirSync(logDir(dir)).filter((n) => n.startsWith(`${FIRST_INCR}.cut-`));
      expect(side).toHaveLength(1);
      expect(fs.readFileSync(path.join(logDir(dir), side[0])).equals(torn.subarray(lastStart))).toBe(true);
      const [backup] = backups(dir);
      expect(fs.readFileSync(path.join(dir, backup, FIRST_INCR)).equals(torn)).toBe(true);
      expect(cli(['check', dir]).status).toBe(0);
      const state = await aofState(dir);
      expect(Object.keys(state)).toHaveLength(199);
      expect(state.k199).toBeUndefined();
    },
  );

  it('a log with no #CRC line at all is valid, its last command included', async () => {
    fs.writeFileSync(incr, full.toString('latin1').replace(/#CRC:[0-9a-f]{8}\r\n/g, ''), 'latin1');
    const r = cli(['check', dir]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('all 1 files of the log are valid');
    expect(Object.keys(await aofState(dir))).toHaveLength(200);
  });
});

describe('unusable arguments: one line on stderr, exit 2', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it.each([
    ['a path that does not exist', (d: string) => ['check', path.join(d, 'nope')], 'no such file or folder'],
    ['a folder without appendonlydir/', (d: string) => ['info', d], 'no appendonlydir/'],
    [
      'an appendonlydir/ without a manifest',
      (d: string) => {
        fs.mkdirSync(path.join(d, 'appendonlydir'));
        return ['cat', d];
      },
      'holds no manifest',
    ],
    [
      'a file that is not a log',
      (d: string) => {
        fs.writeFileSync(path.join(d, 'x.db'), 'hello, not a database');
        return ['check', path.join(d, 'x.db')];
      },
      'not a log',
    ],
    ['a bad number', (d: string) => ['truncate', d, '--to-seq', 'ten'], 'not a non-negative integer'],
    ['an unknown command', () => ['frobnicate'], 'unknown command'],
  ])('%s', (_name, args, message) => {
    const r = cli(args(dir));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(message);
  });
});
