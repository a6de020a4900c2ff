import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import {
  APP_MODULE,
  aofApp,
  backups,
  Count,
  cli,
  FlushAll,
  manualClock,
  Put,
  PutMany,
  sqliteApp,
  sqliteState,
  tempDir,
} from './helpers';

const T0 = 1_764_000_000_000;

describe('appendonly info and cat', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    const clock = manualClock(T0);
    const app = await aofApp({ dir, appendfsync: 'always', aofTimestamps: true }, clock);
    await app.execute(new Put('a', 1));
    await app.compact();
    clock.set(T0 + 5000);
    await app.execute(
      new PutMany([
        ['b', 2],
        ['c', 3],
      ]),
    );
    await app.execute(new Count('n', 4));
    clock.set(T0 + 9000);
    await app.execute(new FlushAll());
    await app.execute(new Put('z', 'last'));
    await app.close();
  });
  afterEach(() => cleanup());

  it('info: counts by type, files, timestamps; the key count needs --app when user events are in the log', () => {
    const r = cli(['info', dir, '--json']);
    expect(r.status).toBe(0);
    const i = JSON.parse(r.stdout);
    expect(i).toMatchObject({
      kind: 'aof',
      snapshot: { seq: 1, keys: 1 },
      commands: 4,
      events: 5,
      eventsByType: { SET: 3, Counted: 1, FLUSHALL: 1 },
      firstSeq: 2,
      lastSeq: 6,
      firstTime: new Date(T0 + 5000).toISOString(),
      lastTime: new Date(T0 + 9000).toISOString(),
      keys: null,
    });
    expect(i.files.map((f: { kind: string }) => f.kind)).toEqual(['base', 'incr']);
    expect(i.keysUnknownBecause).toContain('Counted');
    const withApp = JSON.parse(cli(['info', dir, '--json', '--app', APP_MODULE]).stdout);
    expect(withApp.keys).toBe(1);
    const text = cli(['info', dir]).stdout;
    expect(text).toContain('keys after replay: unknown');
    expect(text).toContain('Counted: 1');
  });

  it('cat --json: JSON Lines with sequence numbers and times, snapshot first', () => {
    const r = cli(['cat', dir, '--json']);
    expect(r.status).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toEqual({ kind: 'snapshot', seq: 1 });
    expect(lines[1]).toEqual({ kind: 'entry', snapshotSeq: 1, key: 'a', value: 1 });
    const events = lines.filter((l) => l.kind === 'event');
    expect(events.map((e) => [e.seq, e.type])).toEqual([
      [2, 'SET'],
      [3, 'SET'],
      [4, 'Counted'],
      [5, 'FLUSHALL'],
      [6, 'SET'],
    ]);
    expect(events[1]).toMatchObject({
      group: 2,
      time: new Date(T0 + 5000).toISOString(),
      data: { key: 'c', value: 3 },
    });
    const text = cli(['cat', dir]).stdout;
    expect(text).toContain(`5 ${new Date(T0 + 9000).toISOString()} FLUSHALL {}`);
  });

  it('never changes the log: a torn tail is reported and skipped, not cut', () => {
    const incr = path.join(dir, 'appendonlydir', 'appendonly.aof.2.incr.aof');
    fs.appendFileSync(incr, '*2\r\n$3\r\nDEL');
    const size = fs.statSync(incr).size;
    const r = cli(['cat', dir]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('check --fix');
    expect(fs.statSync(incr).size).toBe(size);
  });
});

describe('a .db store: check, info, cat', () => {
  let dir: string;
  let cleanup: () => void;
  let db: string;
  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    db = path.join(dir, 'app.db');
    const app = await sqliteApp(db);
    await app.execute(new Put('a', 1));
    await app.execute(
      new PutMany([
        ['b', 2],
        ['c', 3],
        ['d', 4],
      ]),
    );
    await app.close();
  });
  afterEach(() => cleanup());

  it('check reports a valid store; info and cat read it', () => {
    const r = cli(['check', db]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('valid');
    expect(JSON.parse(cli(['info', db, '--json']).stdout)).toMatchObject({
      kind: 'sqlite-wal',
      commands: 2,
      keys: 4,
    });
    expect(cli(['cat', db]).stdout.trim().split('\n')).toHaveLength(4);
  });

  it('check finds a command cut short (last good sequence); --fix removes it after a backup, into a side file', async () => {
    const conn = new Database(db);
    conn.prepare('DELETE FROM events WHERE seq = 4').run();
    conn.close();
    const r = cli(['check', db]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('the last good sequence is 1');
    const fixed = cli(['check', db, '--fix', '--yes']);
    expect(fixed.status).toBe(0);
    expect(fixed.stderr).toMatch(/backup: .*app\.db\.backup-/);
    const side = fs.readdirSync(dir).find((n) => n.includes('.cut-'))!;
    expect(fs.readFileSync(path.join(dir, side), 'utf8').trim().split('\n')).toHaveLength(2);
    expect(backups(dir).length).toBe(1);
    expect(await sqliteState(db)).toEqual({ a: 1 });
  });

  it('refuses while an app holds the store', async () => {
    const app = await sqliteApp(db);
    try {
      const r = cli(['check', db, '--fix', '--yes']);
      expect(r.status).toBe(1);
      expect(r.stderr).toContain('locked by another writer');
    } finally {
      await app.close();
    }
  });
});
