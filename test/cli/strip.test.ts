import * as fs from 'node:fs';
import * as path from 'node:path';
import {
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
  redisCheckAof,
  sqliteApp,
  tempDir,
} from './helpers';

describe('appendonly strip', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('undoes an accidental FLUSHALL: keys written, FLUSHALL, strip --type FLUSHALL --last, reopen, keys back', async () => {
    const app = await aofApp({ dir, appendfsync: 'always', aofTimestamps: true });
    await app.execute(new Put('a', 1));
    await app.execute(
      new PutMany([
        ['b', 2],
        ['c', { deep: [3] }],
      ]),
    );
    await app.execute(new FlushAll());
    await app.execute(new FlushAll());
    await app.execute(new Put('after', true));
    expect(app.state.size).toBe(1);
    await app.close();

    const r = cli(['strip', dir, '--type', 'FLUSHALL', '--last', '--yes']);
    expect(r.stderr).toMatch(/backup: .*strip/);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('removed FLUSHALL at seq 5');
    // Only the last FLUSHALL went: the first one still empties the state.
    expect(await aofState(dir)).toEqual({ after: true });
    expect(cli(['strip', dir, '--type', 'FLUSHALL', '--last', '--yes']).status).toBe(0);
    expect(await aofState(dir)).toEqual({ a: 1, after: true, b: 2, c: { deep: [3] } });
    expect(cli(['check', dir]).status).toBe(0);
    expect(redisCheckAof([manifestOf(dir)]).status).toBe(0);
    expect(backups(dir)).toHaveLength(2);
    expect(cli(['strip', dir, '--type', 'FLUSHALL', '--yes']).status).toBe(1);
  });

  it('inside a MULTI group removes the record alone and recomputes the #CRC', async () => {
    const app = await aofApp({ dir, appendfsync: 'always' });
    await app.execute(new Count('n', 1));
    await app.execute(
      new PutMany([
        ['p', 1],
        ['q', 2],
        ['r', 3],
      ]),
    );
    await app.close();
    const file = path.join(logDir(dir), 'appendonly.aof.1.incr.aof');
    const before = fs.readFileSync(file, 'latin1');
    const r = cli(['strip', dir, '--type', 'SET', '--last', '--yes']);
    expect(r.status).toBe(0);
    const after = fs.readFileSync(file, 'latin1');
    expect(after).toContain('MULTI');
    expect(after).not.toContain('$1\r\nr\r\n');
    // The group before the edited one is byte for byte the same (the edited one starts at its @env record).
    const multiAt = before.lastIndexOf('$4\r\n@env', before.indexOf('*1\r\n$5\r\nMULTI')) - 4; // its *N line
    expect(after.slice(0, multiAt)).toBe(before.slice(0, multiAt));
    // Its envelope lost the removed event's id and kept the others' (an id never changes).
    const ids = (s: string) => s.slice(multiAt).split('\r\n')[4].split(',');
    expect(ids(after)).toEqual(ids(before).slice(0, 2));
    const crcBefore = /#CRC:([0-9a-f]{8})\r\n$/.exec(before)![1];
    const crcAfter = /#CRC:([0-9a-f]{8})\r\n$/.exec(after)![1];
    expect(crcAfter).not.toBe(crcBefore);
    expect(cli(['check', dir]).status).toBe(0);
    expect(redisCheckAof([manifestOf(dir)]).status).toBe(0);
    expect(await aofState(dir)).toEqual({ n: 1, p: 1, q: 2 });

    // Every record of a user type; a group left empty goes whole.
    expect(cli(['strip', dir, '--type', 'Counted', '--yes']).status).toBe(0);
    expect(await aofState(dir)).toEqual({ p: 1, q: 2 });
  });

  it('with keepHistory, after a compaction: --from-history rebuilds the log from history/ and strips there', async () => {
    const app = await aofApp({ dir, appendfsync: 'always', keepHistory: true });
    await app.execute(new Put('a', 1));
    await app.execute(
      new PutMany([
        ['b', 2],
        ['c', 3],
      ]),
    );
    await app.execute(new FlushAll());
    await app.execute(new Put('d', 4));
    await app.compact();
    await app.execute(new Put('e', 5));
    await app.close();

    const plain = cli(['strip', dir, '--type', 'FLUSHALL', '--last', '--yes']);
    expect(plain.status).toBe(1);
    expect(plain.stderr).toContain('try --from-history');

    const r = cli(['strip', dir, '--type', 'FLUSHALL', '--last', '--from-history', '--yes']);
    expect(r.stderr).toContain('rebuilt the log from its replaced incr files');
    expect(r.status).toBe(0);
    expect(await aofState(dir)).toEqual({ a: 1, b: 2, c: 3, d: 4, e: 5 });
    expect(cli(['check', dir]).status).toBe(0);
    expect(redisCheckAof([manifestOf(dir)]).status).toBe(0);
    // The new manifest has no base: the chain of incr files from the first one.
    expect(fs.readFileSync(manifestOf(dir), 'utf8')).not.toContain('type b');
  });

  it('without keepHistory, the files kept for a consumer behind (type h): --from-history rebuilds the log from them', async () => {
    // given: a consumer stopped at seq 0, so each compaction keeps the incr file it replaced
    const app = await aofApp({ dir, appendfsync: 'always' });
    await (await app.subscribe('slow', () => {})).close();
    await app.execute(new Put('a', 1));
    await app.compact();
    await app.execute(new Put('b', 2));
    await app.execute(new FlushAll());
    await app.compact();
    await app.execute(new Put('c', 3));
    await app.close();
    expect(fs.existsSync(path.join(logDir(dir), 'history'))).toBe(false);
    expect(fs.readFileSync(manifestOf(dir), 'utf8')).toMatch(/type h[\s\S]*type h/);
    // when: the FLUSHALL, now inside the base, is stripped from the kept files
    const plain = cli(['strip', dir, '--type', 'FLUSHALL', '--last', '--yes']);
    expect(plain.stderr).toContain('try --from-history');
    const r = cli(['strip', dir, '--type', 'FLUSHALL', '--last', '--from-history', '--yes']);
    // then: every key is back, the log is valid for both checkers, the old base in history/
    expect(r.stderr).toContain('rebuilt the log from its replaced incr files');
    expect(r.status).toBe(0);
    expect(await aofState(dir)).toEqual({ a: 1, b: 2, c: 3 });
    expect(cli(['check', dir]).status).toBe(0);
    expect(redisCheckAof([manifestOf(dir)]).status).toBe(0);
    const manifest = fs.readFileSync(manifestOf(dir), 'utf8');
    expect(manifest).not.toMatch(/type [bh]/);
    expect(fs.readdirSync(path.join(logDir(dir), 'history')).some((n) => n.includes('.base.'))).toBe(true);
  });

  it('refuses a .db store (exit 2) and an unknown type (exit 1)', async () => {
    const db = path.join(dir, 'app.db');
    const app = await sqliteApp(db);
    await app.execute(new FlushAll());
    await app.close();
    const r = cli(['strip', db, '--type', 'FLUSHALL', '--yes']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('convert');

    const aof = await aofApp({ dir: path.join(dir, 'aof') });
    await aof.execute(new Put('a', 1));
    await aof.close();
    const none = cli(['strip', path.join(dir, 'aof'), '--type', 'FLUSHALL', '--yes']);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain('no FLUSHALL record');
  });
});
