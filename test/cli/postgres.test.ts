import * as path from 'node:path';
import { type App, createApp, type JsonValue, silentLogger } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import { admin, usePostgres } from '../support/postgres';
import {
  APP_MODULE,
  aofApp,
  aofState,
  Count,
  cli,
  Put,
  PutMany,
  Remove,
  type Run,
  sqliteState,
  tempDir,
} from './helpers';

/*
 * `appendonly` on PostgreSQL logs, against a throwaway cluster: the path is the connection
 * string with `?log=…&schema=…`. The connection strings carry a password (ignored by the
 * cluster's trust authentication) so that every output can be searched for it.
 */

const SECRET = 'pw-s3cr3t-never-shown';

/** `url` with a password, and the tool's log parameters. */
function logPath(url: string, log: string, schema?: string): string {
  const u = new URL(url);
  u.password = SECRET;
  u.searchParams.set('log', log);
  if (schema !== undefined) u.searchParams.set('schema', schema);
  return u.toString();
}

/** The run, after checking that the password appears nowhere in it. */
function run(args: readonly string[]): Run {
  const r = cli(args);
  expect(r.stdout + r.stderr).not.toContain(SECRET);
  return r;
}

async function pgApp(url: string, log: string): Promise<App> {
  return createApp({
    ...fixtures.conformanceClasses,
    store: new PostgresStore({ connectionString: url, log, appendfsync: 'always' }),
    logger: silentLogger,
  });
}

async function pgState(url: string, log: string): Promise<Record<string, JsonValue>> {
  const app = await pgApp(url, log);
  const state = Object.fromEntries(app.state.entries());
  await app.close();
  return state;
}

/** A log with a snapshot in the middle: compaction deleted the events it covers. */
async function history(url: string, log: string): Promise<Record<string, JsonValue>> {
  const app = await pgApp(url, log);
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
  const state = Object.fromEntries(app.state.entries());
  await app.close();
  return state;
}

describe('appendonly on a PostgreSQL log', () => {
  const server = usePostgres();
  let url = '';
  let dir: string;
  let cleanup: () => void;
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('info shows the kind, the head, the events and the snapshot; cat the records; check says valid', async () => {
    await history(url, 'inspect');
    const p = logPath(url, 'inspect');

    const info = run(['info', p, '--json', '--app', APP_MODULE]);
    expect(info.status).toBe(0);
    const r = JSON.parse(info.stdout);
    expect(r).toMatchObject({
      kind: 'postgres',
      store: { head: 6, 'snapshot seq': 2 },
      snapshot: { seq: 2, keys: 2 },
      commands: 3,
      events: 4,
      firstSeq: 3,
      lastSeq: 6,
      keys: 3,
    });
    expect(r.location).toContain('appendonly.inspect');
    const text = run(['info', p]);
    expect(text.stdout).toMatch(/^kind: postgres$/m);
    expect(text.stdout).toMatch(/^head: 6$/m);

    const cat = run(['cat', p]);
    expect(cat.status).toBe(0);
    expect(cat.stdout.split('\n').slice(0, 4)).toEqual([
      'snapshot up to seq 2',
      '  SET "a" 1',
      '  SET "n" 2',
      expect.stringMatching(/^3 \S+ SET \{"key":"b","value":2\} v1 id=\S+ metadata=- \(command 3, 1\/2\)$/),
    ]);

    const check = run(['check', p]);
    expect(check.stderr).toBe('');
    expect(check.stdout).toMatch(/valid \(head seq 6, snapshot up to seq 2, 4 events above it\)/);
    expect(check.status).toBe(0);
  });

  it('convert aof → postgres → sqlite: the same state and the same `cat`, sequence numbers included', async () => {
    const src = path.join(dir, 'src');
    const app = await aofApp({ dir: src, appendfsync: 'always', aofTimestamps: true });
    await app.execute(new Put('a', 1));
    await app.execute(new Count('n', 2));
    await app.compact();
    await app.execute(new PutMany([['b', 2]]));
    await app.execute(new Remove(['a']));
    const want = Object.fromEntries(app.state.entries());
    await app.close();

    const p = logPath(url, 'converted');
    const toPg = run(['convert', src, p, '--yes']);
    expect(toPg.stderr).toBe('');
    expect(toPg.status).toBe(0);
    expect(toPg.stdout).toMatch(
      /\(aof\) to postgresql:\/\/postgres:\*\*\*@.*\(postgres\): 2 commands, up to seq 4/,
    );
    expect(await pgState(url, 'converted')).toEqual(want);
    expect(run(['check', p]).status).toBe(0);

    const db = path.join(dir, 'back.db');
    const back = path.join(dir, 'back');
    expect(run(['convert', p, db, '--yes']).status).toBe(0);
    expect(run(['convert', p, back, '--yes']).status).toBe(0);
    expect(await sqliteState(db)).toEqual(want);
    expect(await aofState(back)).toEqual(want);
    const lines = (x: string) => run(['cat', x, '--json']).stdout;
    expect(lines(p)).toBe(lines(src));
    expect(lines(db)).toBe(lines(src));

    // The converted log is a live log: an app appends after it.
    const live = await pgApp(url, 'converted');
    await live.execute(new Put('z', 9));
    await live.close();
    expect(await pgState(url, 'converted')).toEqual({ ...want, z: 9 });
  });

  it('convert aof → postgres → aof carries the snapshot’s projections version; info shows it', async () => {
    // given: a log whose snapshot version 3 wrote
    const src = path.join(dir, 'src');
    const app = await createApp({
      ...fixtures.conformanceClasses,
      store: new AofStore({ dir: src, appendfsync: 'always' }),
      logger: silentLogger,
      projectionsVersion: 3,
    });
    await app.execute(new Count('n', 2));
    await app.compact();
    await app.execute(new Count('n', 1));
    await app.close();
    const p = logPath(url, 'versioned');
    const back = path.join(dir, 'back');
    // when
    expect(run(['convert', src, p, '--yes']).status).toBe(0);
    expect(run(['convert', p, back, '--yes']).status).toBe(0);
    // then
    expect(JSON.parse(run(['info', p, '--json']).stdout).snapshot).toEqual({
      seq: 1,
      keys: 1,
      projectionsVersion: '3',
    });
    const lines = (x: string) => run(['cat', x, '--json']).stdout;
    expect(lines(p)).toBe(lines(src));
    expect(lines(back)).toBe(lines(src));
    // and the PostgreSQL copy is loaded as it is by version 3, refused by version 4
    const open = (projectionsVersion: number) =>
      createApp({
        ...fixtures.conformanceClasses,
        store: new PostgresStore({ connectionString: url, log: 'versioned' }),
        logger: silentLogger,
        projectionsVersion,
      });
    const three = await open(3);
    expect(three.stats()).toMatchObject({ entriesReplayed: 1, groupsReplayed: 1 });
    await three.close();
    await expect(open(4)).rejects.toMatchObject({ code: 'PROJECTIONS_VERSION', snapshotVersion: '3' });
  });

  it('convert postgres → postgres: a copy under another log name, in another schema', async () => {
    const want = await history(url, 'original');
    const to = logPath(url, 'copy', 'copies');
    const r = run(['convert', logPath(url, 'original'), to, '--yes']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(run(['check', to]).status).toBe(0);
    const lines = (x: string) => run(['cat', x, '--json']).stdout;
    expect(lines(to)).toBe(lines(logPath(url, 'original')));
    const app = await createApp({
      ...fixtures.conformanceClasses,
      store: new PostgresStore({ connectionString: url, log: 'copy', schema: 'copies' }),
      logger: silentLogger,
    });
    expect(Object.fromEntries(app.state.entries())).toEqual(want);
    await app.close();
  });

  it('convert refuses a log that already holds events, and leaves it as it was', async () => {
    const want = await history(url, 'full');
    const src = path.join(dir, 'src');
    const app = await aofApp({ dir: src, appendfsync: 'always' });
    await app.execute(new Put('x', 1));
    await app.close();
    const r = run(['convert', src, logPath(url, 'full'), '--yes']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/already holds events \(head seq 6\); refusing to write over it/);
    expect(await pgState(url, 'full')).toEqual(want);
  });

  it('check finds a missing event, a head beyond the events, and deleted events no snapshot covers', async () => {
    const broken = async (log: string, sql: string) => {
      await history(url, log);
      await admin(url, sql, [log]);
      return run(['check', logPath(url, log)]);
    };
    const gap = await broken('gap', 'DELETE FROM appendonly.events WHERE log = $1 AND seq = 5');
    expect(gap.status).toBe(1);
    expect(gap.stdout).toMatch(
      /not valid: 4 events expected above the snapshot \(seq 3 to 6\), 3 found: seq 5 is missing/,
    );

    const ahead = await broken('ahead', 'UPDATE appendonly.heads SET seq = 9 WHERE log = $1');
    expect(ahead.status).toBe(1);
    expect(ahead.stdout).toMatch(/not valid: 7 events expected above the snapshot .* 4 found/);

    const uncovered = await broken(
      'uncovered',
      'UPDATE appendonly.heads SET snapshot_seq = 0, snapshot_id = 0 WHERE log = $1',
    );
    expect(uncovered.status).toBe(1);
    expect(uncovered.stdout).toMatch(/not valid: .*events up to seq 2 are gone and no snapshot covers them/);

    const torn = await broken('torn', 'DELETE FROM appendonly.events WHERE log = $1 AND seq = 6');
    expect(torn.status).toBe(1);
  });

  it('strip, truncate, rewrite and check --fix refuse with one line; a missing log or schema is a usage error', async () => {
    await history(url, 'refused');
    const p = logPath(url, 'refused');
    for (const args of [
      ['strip', p, '--type', 'FLUSHALL', '--yes'],
      ['truncate', p, '--to-seq', '3', '--yes'],
      ['rewrite', p, '--yes'],
      ['check', p, '--fix', '--yes'],
    ]) {
      const r = run(args);
      expect(r.status).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/PostgreSQL log/);
    }
    expect(await pgState(url, 'refused')).toMatchObject({ n: 7 });

    const none = run(['info', logPath(url, 'nosuchlog')]);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('no log named "nosuchlog"');
    const noSchema = run(['cat', logPath(url, 'refused', 'elsewhere')]);
    expect(noSchema.status).toBe(2);
    expect(noSchema.stderr).toContain('no appendonly store in schema elsewhere');
  });

  it('--help says how a PostgreSQL log is named', () => {
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('postgres://user@host/db?log=bank&schema=appendonly');
    expect(run(['convert', '--help']).stdout).toContain('postgres://…?log=NAME');
  });

  it('a server that cannot be reached is one line, without the password', () => {
    const r = run(['info', `postgres://me:${SECRET}@127.0.0.1:1/nodb?log=x`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^appendonly: cannot connect to postgres:\/\/me:\*\*\*@127\.0\.0\.1:1\/nodb/);
  });
});
