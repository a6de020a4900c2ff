import 'reflect-metadata';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type App,
  CommandHandler,
  CorruptLogError,
  createApp,
  defineEvent,
  type EventStore,
  InvalidEventError,
  type JsonValue,
  type ProjectionState,
  On,
  Projection,
  silentLogger,
  TruncatedLogError,
} from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';
import { fixtures } from 'appendonly/testing';
import { recordingLogger, stateOf, tempDir } from './support';

/*
 * Hostile records: what a damaged disk, a hand edit or another program may leave in a log. A
 * record announcing a huge length, a JSON payload nested 100,000 deep or 50 MB long, a manifest
 * naming a file outside its folder. Each ends in a clear error (file, offset, line) or a correct
 * load: never a crash, a stack overflow, an allocation of the announced size, or a file touched
 * outside the log folder.
 */

const { Put } = fixtures;
const INCR = 'appendonly.aof.1.incr.aof';

/** A user event carrying any JSON. */
class Note {
  constructor(readonly data: JsonValue) {}
}
const Noted = defineEvent<{ data: JsonValue }>('Noted');
@CommandHandler(Note)
class NoteHandler {
  execute(c: Note) {
    return [Noted({ data: c.data })];
  }
}
@Projection()
class Notes {
  @On(Noted)
  noted(e: typeof Noted.Event, kv: ProjectionState) {
    kv.set('note', e.data.data);
  }
}
const classes = {
  handlers: [...fixtures.conformanceClasses.handlers, NoteHandler],
  projections: [...fixtures.conformanceClasses.projections, Notes],
};
const open = (store: EventStore, logger = silentLogger): Promise<App> =>
  createApp({ ...classes, store, logger });

/** `[[[…1…]]]`, `depth` deep, built without recursion. */
function nested(depth: number): JsonValue {
  let v: JsonValue = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}
/** How deep a value built by `nested` is, measured without recursion. */
function depthOf(v: JsonValue): number {
  let d = 0;
  while (Array.isArray(v)) {
    v = v[0];
    d++;
  }
  return d;
}

const outOfBand = () => process.memoryUsage().arrayBuffers;

describe('hostile records in an AOF', () => {
  let dir: string;
  let cleanup: () => void;
  let incr: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir('hostile'));
    incr = path.join(dir, 'appendonlydir', INCR);
  });
  afterEach(() => cleanup());

  /** Three SETs (a, b, c); returns where each group starts. */
  async function threeGroups(): Promise<number[]> {
    const app = await open(new AofStore({ dir, appendfsync: 'always' }));
    const starts: number[] = [];
    for (const k of ['a', 'b', 'c']) {
      starts.push(fs.existsSync(incr) ? fs.statSync(incr).size : 0);
      await app.execute(new Put(k, 7));
    }
    await app.close();
    return starts;
  }

  /** Replaces the first `$1\r\n7` (the value) at or after `from` by `header\r\n7`. */
  function damage(from: number, header: string): Buffer {
    const text = fs.readFileSync(incr, 'latin1');
    const at = text.indexOf('$1\r\n7\r\n', from);
    const bytes = Buffer.from(`${text.slice(0, at)}${header}\r\n7\r\n${text.slice(at + 7)}`, 'latin1');
    fs.writeFileSync(incr, bytes);
    return bytes;
  }

  it('a bulk length of $999999999999 in the middle: CorruptLogError naming file and offset, nothing cut, nothing allocated', async () => {
    const starts = await threeGroups();
    const bytes = damage(starts[1], '$999999999999');
    const before = outOfBand();
    const err = await open(new AofStore({ dir })).catch((e: unknown) => e);
    expect(outOfBand() - before).toBeLessThan(16 * 1024 * 1024);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect(err).toMatchObject({ file: INCR, offset: starts[1] });
    expect((err as Error).message).toMatch(
      /announces more bytes than the file holds, yet a complete group ends after it.*a length was damaged/,
    );
    expect(fs.readFileSync(incr)).toEqual(bytes); // the complete group after it is still there
  });

  it('a bulk length of $999999999999 in the last group, its #CRC line after it: corruption too (a torn write never leaves that line)', async () => {
    const starts = await threeGroups();
    damage(starts[2], '$999999999999');
    const err = await open(new AofStore({ dir })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect(err).toMatchObject({ file: INCR, offset: starts[2] });
  });

  it('a bulk length of $999999999999 ending the file: cut as a torn tail with a warning, or TruncatedLogError', async () => {
    await threeGroups();
    const end = fs.statSync(incr).size;
    fs.appendFileSync(incr, '*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$999999999999\r\nsome bytes of it');
    const strict = await open(new AofStore({ dir, loadTruncated: false })).catch((e: unknown) => e);
    expect(strict).toBeInstanceOf(TruncatedLogError);
    expect(strict).toMatchObject({ file: INCR, offset: end });
    const logger = recordingLogger();
    const before = outOfBand();
    const app = await open(new AofStore({ dir }), logger);
    expect(outOfBand() - before).toBeLessThan(16 * 1024 * 1024);
    expect(stateOf(app)).toEqual({ a: 7, b: 7, c: 7 });
    expect(logger.lines.join('\n')).toContain(
      `${INCR}: the log ends in an incomplete record (short read); cutting it at byte offset ${end}`,
    );
    expect(fs.statSync(incr).size).toBe(end);
    await app.close();
  });

  it('an argument count of *999999999999999: CorruptLogError, no RangeError, nothing allocated', async () => {
    const starts = await threeGroups();
    const text = fs.readFileSync(incr, 'latin1');
    fs.writeFileSync(
      incr,
      Buffer.from(`${text.slice(0, starts[1])}*999999999999999${text.slice(starts[1] + 2)}`, 'latin1'),
    );
    const before = outOfBand();
    const err = await open(new AofStore({ dir })).catch((e: unknown) => e);
    expect(outOfBand() - before).toBeLessThan(16 * 1024 * 1024);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect((err as CorruptLogError).file).toBe(INCR);
    expect((err as CorruptLogError).offset).toBeGreaterThanOrEqual(starts[1]);
  });

  it('JSON nested 100,000 deep: refused on the live path; in a log written by hand, a SET loads whole, a user event is a clear error', async () => {
    const app = await open(new AofStore({ dir, appendfsync: 'always' }));
    await app.execute(new Put('a', 1));
    const size = fs.statSync(incr).size;
    await expect(app.execute(new Put('deep', nested(100_000)))).rejects.toThrow(InvalidEventError);
    await expect(app.execute(new Note(nested(100_000)))).rejects.toThrow(/nested deeper than 256 levels/);
    expect(app.status).toBe('ready');
    expect(fs.statSync(incr).size).toBe(size); // nothing of them was logged
    await app.close();
    // Another program wrote them. A SET is loaded whole (JSON.parse does not recurse). It has no
    // #CRC line; the comment before it says it is a hand edit, not a torn write of the store's.
    const json = `${'['.repeat(100_000)}1${']'.repeat(100_000)}`;
    const byHand = '# written by another program\r\n';
    fs.appendFileSync(incr, `${byHand}*3\r\n$3\r\nSET\r\n$4\r\ndeep\r\n$${json.length}\r\n${json}\r\n`);
    const loaded = await open(new AofStore({ dir }));
    expect(depthOf(loaded.state.get('deep') as JsonValue)).toBe(100_000);
    // A compaction must write it back or fail cleanly; either way the log still loads whole.
    const compaction = await loaded.compact().then(
      () => 'ok',
      (e: unknown) => e,
    );
    if (compaction !== 'ok') expect(compaction).toBeInstanceOf(Error);
    await loaded.execute(new Put('after', 1));
    await loaded.close();
    const again = await open(new AofStore({ dir }));
    expect(depthOf(again.state.get('deep') as JsonValue)).toBe(100_000);
    expect(again.state.get('after')).toBe(1);
    await again.close();
    // A user event: its projection sets the state, which refuses the value as the live path
    // does. A clear error from createApp, no stack overflow, the process unharmed.
    const data = `{"data":${json}}`;
    fs.appendFileSync(incr, `${byHand}*2\r\n$5\r\nNoted\r\n$${data.length}\r\n${data}\r\n`);
    await expect(open(new AofStore({ dir }))).rejects.toThrow(
      /replaying event Noted \(seq \d+, appendonly\.aof\.1\.incr\.aof at byte offset \d+\) failed: state key "note" is nested deeper than 256 levels/,
    );
    await expect(open(new AofStore({ dir }))).rejects.toMatchObject({
      name: 'ReplayFailedError',
      cause: expect.any(InvalidEventError),
    });
  });
});

describe.each([
  ['AofStore', (dir: string) => new AofStore({ dir, appendfsync: 'always' })],
  [
    'SqliteWalStore',
    (dir: string) => new SqliteWalStore({ file: path.join(dir, 'app.db'), appendfsync: 'always' }),
  ],
] as const)('a 50 MB payload: %s', (_name, make) => {
  it('in a SET value and in a user event: logged, reloaded exactly, compacted, reloaded again', async () => {
    const { dir, cleanup } = tempDir('huge');
    try {
      const big = 'x'.repeat(50 * 1024 * 1024 - 7) + 'ü€\r\n"'; // multi-byte and escaped characters at the end
      const app = await open(make(dir));
      await app.execute(new Put('big', big));
      await app.execute(new Note({ text: big }));
      await app.close();
      const check = (a: App) => {
        expect(a.state.get('big') === big).toBe(true);
        expect((a.state.get('note') as { text: string }).text === big).toBe(true);
      };
      const reopened = await open(make(dir));
      check(reopened);
      await reopened.compact();
      await reopened.close();
      const compacted = await open(make(dir));
      check(compacted);
      await compacted.close();
    } finally {
      cleanup();
    }
  }, 60_000);
});

describe('a manifest naming files outside its folder', () => {
  let dir: string;
  let cleanup: () => void;
  let logDir: string;
  beforeEach(async () => {
    ({ dir, cleanup } = tempDir('traversal'));
    logDir = path.join(dir, 'appendonlydir');
    const app = await open(new AofStore({ dir }));
    await app.execute(new Put('mine', 1));
    await app.close();
  });
  afterEach(() => cleanup());

  it.each([
    ['../victim.aof', 'a relative path'],
    ['"..\\x2fvictim.aof"', 'a quoted relative path'],
    ['ABSOLUTE', 'an absolute path'],
    ['"victim\\x00.aof"', 'a NUL'],
  ])('%s (%s) is refused naming the line; the file it names is neither read nor touched', async (spelled) => {
    const victim = path.join(dir, 'victim.aof');
    fs.writeFileSync(victim, '*3\r\n$3\r\nSET\r\n$6\r\nstolen\r\n$1\r\n1\r\n');
    const name = spelled === 'ABSOLUTE' ? victim : spelled;
    fs.writeFileSync(
      path.join(logDir, 'appendonly.aof.manifest'),
      `file ${INCR} seq 1 type i\nfile ${name} seq 2 type i\n`,
    );
    const err = await open(new AofStore({ dir })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect((err as Error).message).toMatch(/\(line 2: a file can't be a path, just a file name/);
    expect(fs.readFileSync(victim, 'latin1')).toBe('*3\r\n$3\r\nSET\r\n$6\r\nstolen\r\n$1\r\n1\r\n');
    expect(fs.readdirSync(logDir).sort()).toEqual([INCR, 'appendonly.aof.manifest']);
  });

  it('a manifest left with no base or incr line is refused, and the log files it no longer names are kept', async () => {
    fs.writeFileSync(path.join(logDir, 'appendonly.aof.manifest'), `# file ${INCR} seq 1 type i\n`);
    const err = await open(new AofStore({ dir })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect((err as Error).message).toMatch(/line 1: the manifest names no base and no incr file/);
    expect(fs.readdirSync(logDir).sort()).toEqual([INCR, 'appendonly.aof.manifest']);
  });
});
