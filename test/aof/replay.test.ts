import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  CorruptLogError,
  createApp,
  type EventGroup,
  type EventMetadata,
  SET,
  silentLogger,
  TruncatedLogError,
} from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { fixtures, replayAll } from 'appendonly/testing';
import { crc32 } from '../../adapters/aof/crc';
import { crcHex } from '../../adapters/aof/record-codec';
import { logDir, openApp, recordingLogger, setWithCrc, state, tempDir, writeLog } from './helpers';

const { Put, PutMany, Count } = fixtures;
const INCR = 'appendonly.aof.1.incr.aof';

describe('AofStore replay: repair of a torn tail, refusal of corruption', () => {
  let dir: string;
  let cleanup: () => void;
  let incr: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    incr = path.join(logDir(dir), INCR);
  });
  afterEach(() => cleanup());

  /** Three commands; returns the byte offset where each group starts and the file length. */
  async function threeGroups(): Promise<number[]> {
    const { app } = await openApp({ dir, appendfsync: 'always' });
    const offsets = [0];
    await app.execute(new Put('a', 'x\r\ny'));
    offsets.push(fs.statSync(incr).size);
    await app.execute(new Count('n', 2));
    offsets.push(fs.statSync(incr).size);
    await app.execute(
      new PutMany([
        ['b', 1],
        ['c', 'ü'],
      ]),
    );
    offsets.push(fs.statSync(incr).size);
    await app.close();
    return offsets;
  }

  it('cuts an incomplete last group at every possible cut, warns with file and offset, and appends after it', async () => {
    const offsets = await threeGroups();
    const full = fs.readFileSync(incr);
    // Cuts inside the MULTI of the last group, and inside its #CRC line.
    for (let cut = offsets[2] + 1; cut < offsets[3]; cut += 7) {
      fs.writeFileSync(incr, full.subarray(0, cut));
      const logger = recordingLogger();
      const { app } = await openApp({ dir, appendfsync: 'always' }, logger);
      // Cut whole, a complete MULTI whose #CRC line is torn too: its bytes are unverified.
      const expectedCut = offsets[2];
      expect(state(app)).toEqual({ a: 'x\r\ny', n: 2 });
      expect(logger.lines.join('\n')).toContain(
        `${INCR}: the log ends in an incomplete record (short read); cutting it at byte offset ${expectedCut}`,
      );
      expect(fs.statSync(incr).size).toBe(expectedCut);
      await app.execute(new Put('z', cut));
      await app.close();
      const reopened = await openApp({ dir, appendfsync: 'always' });
      expect(reopened.app.state.get('z')).toBe(cut);
      await reopened.app.close();
      fs.writeFileSync(incr, full);
    }
  });

  /** 200 Puts under `always`, each with its #TS line (a new second each); returns where the last group starts. */
  async function twoHundredPuts(): Promise<number> {
    let now = 1_700_000_000_000;
    const app = await createApp({
      ...fixtures.conformanceClasses,
      store: new AofStore({ dir, appendfsync: 'always', aofTimestamps: true }),
      logger: silentLogger,
      clock: { now: () => (now += 1000) },
    });
    for (let i = 0; i < 199; i++) await app.execute(new Put(`k${i}`, i));
    const lastStart = fs.statSync(incr).size;
    await app.execute(new Put('k199', 199));
    await app.close();
    return lastStart;
  }

  it.each([5, 7])(
    'cuts whole a last command whose #CRC line is torn (%i bytes cut off): 199 Puts stand',
    async (cutOff) => {
      const lastStart = await twoHundredPuts();
      const full = fs.readFileSync(incr);
      expect(full.toString('latin1', lastStart, lastStart + 4)).toBe('#TS:');
      expect(full.lastIndexOf('#CRC:')).toBe(full.length - 15);
      fs.writeFileSync(incr, full.subarray(0, full.length - cutOff)); // inside the last #CRC line
      const strict = await openApp({ dir, loadTruncated: false }).catch((e: unknown) => e);
      expect(strict).toBeInstanceOf(TruncatedLogError);
      expect((strict as TruncatedLogError).offset).toBe(lastStart);
      expect((strict as Error).message).toContain('no whole #CRC line');
      const logger = recordingLogger();
      const { app } = await openApp({ dir }, logger);
      expect(app.state.size).toBe(199);
      expect(app.state.get('k198')).toBe(198);
      expect(app.state.has('k199')).toBe(false);
      expect(app.stats().lastSeq).toBe(199);
      expect(logger.lines.join('\n')).toContain(
        `${INCR}: the log ends in an incomplete record (short read); cutting it at byte offset ${lastStart} (${full.length - cutOff - lastStart} bytes removed)`,
      );
      expect(fs.statSync(incr).size).toBe(lastStart);
      await app.close();
    },
  );

  it('keeps the last command of a log with no #CRC line at all (a file written by hand)', async () => {
    await twoHundredPuts();
    const bare = fs.readFileSync(incr, 'latin1').replace(/#CRC:[0-9a-f]{8}\r\n/g, '');
    fs.writeFileSync(incr, bare, 'latin1');
    const logger = recordingLogger();
    const { app } = await openApp({ dir, loadTruncated: false }, logger);
    expect(app.state.size).toBe(200);
    expect(app.state.get('k199')).toBe(199);
    expect(logger.lines.filter((l) => l.startsWith('warn:'))).toEqual([]);
    await app.close();
    expect(fs.readFileSync(incr, 'latin1')).toBe(bare);
  });

  it('refuses a torn tail with loadTruncated: false, naming file and offset', async () => {
    const offsets = await threeGroups();
    fs.truncateSync(incr, offsets[2] + 10);
    const err = await openApp({ dir, loadTruncated: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TruncatedLogError);
    expect((err as TruncatedLogError).file).toBe(INCR);
    expect((err as TruncatedLogError).offset).toBe(offsets[2]);
    expect(fs.statSync(incr).size).toBe(offsets[2] + 10);
  });

  it('detects a flipped byte inside a value by its #CRC and refuses to start', async () => {
    const offsets = await threeGroups();
    const bytes = fs.readFileSync(incr);
    const at = bytes.indexOf('"by":2') + 5; // the digit 2 → 3: still valid RESP and JSON
    bytes[at] = '3'.charCodeAt(0);
    fs.writeFileSync(incr, bytes);
    const err = (await openApp({ dir }).catch((e: unknown) => e)) as CorruptLogError;
    expect(err).toBeInstanceOf(CorruptLogError);
    expect(err.file).toBe(INCR);
    expect(err.offset).toBe(offsets[1]);
    expect(err.message).toMatch(/expected a group matching #CRC:[0-9a-f]{8}.*a byte was changed/);
  });

  it('refuses garbage in the middle, whatever loadTruncated says, naming offset and what was expected', async () => {
    const offsets = await threeGroups();
    const bytes = fs.readFileSync(incr);
    bytes[offsets[1]] = 'X'.charCodeAt(0);
    fs.writeFileSync(incr, bytes);
    const err = (await openApp({ dir, loadTruncated: true }).catch((e: unknown) => e)) as CorruptLogError;
    expect(err).toBeInstanceOf(CorruptLogError);
    expect(err.offset).toBe(offsets[1]);
    expect(err.message).toBe(
      `${INCR}: bad format at byte offset ${offsets[1]}: expected '*' or '#' at the start of a record`,
    );
    expect(fs.readFileSync(incr)).toEqual(bytes);
  });

  it('refuses a bad bulk length, a nested MULTI and a user record of the wrong arity', async () => {
    for (const [bad, expected] of [
      ['*2\r\n$3\r\nDEL\r\n$x\r\n', /byte offset 14: expected a decimal number/],
      ['*1\r\n$5\r\nMULTI\r\n*1\r\n$5\r\nMULTI\r\n', /byte offset 15: expected EXEC before another MULTI/],
      [
        '*3\r\n$5\r\nEvent\r\n$1\r\n1\r\n$1\r\n2\r\n',
        /byte offset 8: expected an event record of 2 arguments/,
      ],
      ['*2\r\n$5\r\nEvent\r\n$3\r\n{x}\r\n', /byte offset 19: expected the data of event Event as JSON/],
      ['*1\r\n$4\r\nEXEC\r\n', /byte offset 0: expected MULTI before EXEC/],
      ['#CRC:00000000\r\n', /byte offset 0: expected a record before #CRC/],
    ] as const) {
      fs.rmSync(dir, { recursive: true, force: true });
      await (await openApp({ dir })).app.close();
      fs.writeFileSync(incr, `${bad}*1\r\n$8\r\nFLUSHALL\r\n`);
      const err = await openApp({ dir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CorruptLogError);
      expect((err as Error).message).toMatch(expected);
    }
  });

  it('refuses a SET value that is not JSON, with or without a #CRC, at the byte offset of the value', async () => {
    // `[1` and `2]` each pass their checksum, and together they would parse as one JSON value:
    // the reader must see that the batch does not give back its pieces, and stop at the first.
    for (const tail of [
      '*3\r\n$3\r\nSET\r\n$3\r\nbad\r\n$3\r\n{x}\r\n',
      `${setWithCrc('bad', '[1')}${setWithCrc('worse', '2]')}`,
      `${setWithCrc('bad', '')}`,
    ]) {
      fs.rmSync(dir, { recursive: true, force: true });
      const offsets = await threeGroups();
      fs.appendFileSync(incr, `${setWithCrc('fine', '{"ok":true}')}${tail}${setWithCrc('after', '1')}`);
      const valueAt =
        offsets[3] + Buffer.byteLength(setWithCrc('fine', '{"ok":true}')) + tail.indexOf('bad') + 5;
      const at = valueAt + tail.slice(tail.indexOf('bad') + 5).indexOf('\n') + 1;
      const err = (await openApp({ dir }).catch((e: unknown) => e)) as CorruptLogError;
      expect(err).toBeInstanceOf(CorruptLogError);
      expect(err.message).toContain(
        `${INCR}: bad format at byte offset ${at}: expected the value of SET as JSON`,
      );
    }
  });

  it('reports a bad value before a malformed record further on (file order)', async () => {
    const offsets = await threeGroups();
    const bad = '*3\r\n$3\r\nSET\r\n$3\r\nbad\r\n$3\r\n{x}\r\n';
    fs.appendFileSync(incr, `${bad}${setWithCrc('ok', '1')}*1\r\n$4\r\nEXEC\r\n`);
    const err = (await openApp({ dir }).catch((e: unknown) => e)) as CorruptLogError;
    expect(err).toBeInstanceOf(CorruptLogError);
    expect(err.offset).toBe(offsets[3] + bad.indexOf('{x}'));
    expect(err.message).toContain('the value of SET as JSON');
  });

  it('accepts a group without #CRC and a comment line added by hand', async () => {
    await threeGroups();
    fs.appendFileSync(incr, '# added by hand\r\n*3\r\n$3\r\nSET\r\n$4\r\nhand\r\n$4\r\ntrue\r\n');
    const { app } = await openApp({ dir });
    expect(app.state.get('hand')).toBe(true);
    expect(app.stats().lastSeq).toBe(5);
    await app.execute(new Put('after', 1));
    await app.close();
    const again = await openApp({ dir });
    expect(state(again.app)).toMatchObject({ hand: true, after: 1 });
    await again.app.close();
  });

  it('an append before any replay first checks the end of the log, so it never lands after a torn record', async () => {
    const offsets = await threeGroups();
    fs.truncateSync(incr, offsets[2] + 9);
    const logger = recordingLogger();
    const store = new AofStore({ dir, appendfsync: 'always' });
    await store.open({
      snapshots: {
        takeSnapshot: () => {
          throw new Error('no snapshot');
        },
      },
      logger,
      clock: { now: Date.now },
    });
    await store.append({ seq: 4, time: 0, events: [SET('late', 1)] });
    await store.close();
    expect(logger.lines.join('\n')).toContain(`cutting it at byte offset ${offsets[2]}`);
    const { app } = await openApp({ dir });
    expect(state(app)).toEqual({ a: 'x\r\ny', n: 2, late: 1 });
    await app.close();
  });

  it('replays each group with its time in ms from its envelope; aofTimestamps still writes #TS lines (whole seconds)', async () => {
    // given an app on a clock with milliseconds, and #TS annotations on
    let now = 1_700_000_000_250;
    const clock = { now: () => now };
    const store = new AofStore({ dir, aofTimestamps: true });
    const app = await createApp({ ...fixtures.conformanceClasses, store, logger: silentLogger, clock });
    await app.execute(new Put('a', 1));
    await app.execute(new Put('b', 2));
    now += 5000;
    await app.execute(new Put('c', 3));
    await app.close();
    expect(fs.readFileSync(incr, 'latin1').match(/#TS:\d+/g)).toEqual(['#TS:1700000000', '#TS:1700000005']);
    // then one-SET commands come through the sink's `set` shortcut with their time as groups do
    const groups = (await replayAll(new AofStore({ dir }))).filter((r) => r.kind === 'group');
    expect(groups.map((g) => (g as { time: number }).time)).toEqual([
      1_700_000_000_250, 1_700_000_000_250, 1_700_000_005_250,
    ]);
  });

  it('refuses a torn file that is not the last one', async () => {
    const offsets = await threeGroups();
    const { app } = await openApp({ dir });
    await app.compact().catch(() => {});
    await app.close();
    // After compaction the manifest is base + incr 2. Put back a torn incr 1 in front of incr 2.
    fs.writeFileSync(
      incr,
      fs.readFileSync(path.join(logDir(dir), 'appendonly.aof.1.base.aof')).subarray(0, 5),
    );
    fs.writeFileSync(
      path.join(logDir(dir), 'appendonly.aof.manifest'),
      `file ${INCR} seq 1 type i startseq 1\nfile appendonly.aof.2.incr.aof seq 2 type i\n`,
    );
    const err = await openApp({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptLogError);
    expect((err as Error).message).toMatch(/byte offset 0: expected a complete record.*only the last file/);
    expect(offsets.length).toBe(4);
  });

  /** A group as the store writes it, its `#CRC` computed over `records`. */
  const withCrc = (records: string) =>
    `${records}#CRC:${crcHex(crc32(Buffer.from(records), 0, Buffer.byteLength(records)))}\r\n`;
  const bulk = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  const ID = '019a0b1c-2d3e-7f40-8a51-b2c3d4e5f607';

  it('hands back the data and metadata of many groups, across batches and in MULTI, as appended', async () => {
    // given groups of user events with metadata, some several events long, some values long
    // enough to be parsed on their own (and to parse what waits first, this group's metadata
    // too), more than one read of the file holds
    const long = 'x'.repeat(20_000);
    const groups: EventGroup[] = [];
    let seq = 1;
    for (let g = 0; g < 3000; g++) {
      const n = g % 7 === 0 ? 3 : 1;
      const events = Array.from({ length: n }, (_, i) => ({
        type: g % 2 === 0 ? 'Counted' : 'Other',
        data: g % 50 === 11 ? { key: long, by: i } : g % 5 === 0 ? g : { key: `k${g}\n"`, by: i },
      }));
      const metadata: EventMetadata | undefined =
        g % 3 === 0 ? undefined : g % 50 === 13 ? { big: long } : { correlationId: `req-${g}` };
      const ids = events.map((_, i) => `${ID.slice(0, 30)}${String(seq + i).padStart(6, '0')}`);
      groups.push({ seq, time: 1_700_000_000_000 + g, events, ids, ...(metadata && { metadata }) });
      seq += n;
    }
    await writeLog(dir, groups);
    // when the log is replayed, then each group comes back as it was appended
    const read = (await replayAll(new AofStore({ dir }))).filter((r) => r.kind === 'group');
    expect(read.length).toBe(groups.length);
    for (let i = 0; i < groups.length; i++) expect(read[i]).toMatchObject(groups[i]);
    expect(read.map((r) => 'metadata' in r)).toEqual(groups.map((g) => g.metadata !== undefined));
  });

  it('reads the short envelope `*2 @env <id>` and refuses one whose id count or time is wrong, at its offset', async () => {
    // given a short envelope on a single SET, on a user event, and on a MULTI of two events
    const t = 0x019a0b1c2d3e; // the ms in ID's first 48 bits
    const ID2 = `${ID.slice(0, 35)}8`;
    const env = (id: string) => `*2\r\n${bulk('@env')}${bulk(id)}`;
    const set = withCrc(`${env(ID)}*3\r\n${bulk('SET')}${bulk('k')}${bulk('1')}`);
    const event = withCrc(`${env(ID2)}*2\r\n${bulk('E')}${bulk('{"b":2}')}`);
    const offsets = await threeGroups();
    fs.appendFileSync(incr, `${set}${event}`);
    // when it is replayed, then each command has the envelope's id and the time its id carries
    const read = (await replayAll(new AofStore({ dir }))).slice(-2);
    expect(read[0]).toMatchObject({ seq: 5, time: t, ids: [ID], events: [SET('k', 1)] });
    expect(read[1]).toMatchObject({ seq: 6, time: t, ids: [ID2], events: [{ type: 'E', data: { b: 2 } }] });
    // and a short envelope of one id before two events is refused at its group's offset
    const start = offsets[3] + Buffer.byteLength(set) + Buffer.byteLength(event);
    const two = `*1\r\n${bulk('MULTI')}*2\r\n${bulk('E')}${bulk('1')}*2\r\n${bulk('E')}${bulk('2')}*1\r\n${bulk('EXEC')}`;
    fs.appendFileSync(incr, withCrc(`${env(ID)}${two}`));
    let err = (await openApp({ dir }).catch((e: unknown) => e)) as CorruptLogError;
    expect(err).toBeInstanceOf(CorruptLogError);
    expect(err.message).toContain(
      `${INCR}: bad format at byte offset ${start}: expected an envelope with one id per event (2)`,
    );
    // and one whose 36-byte id carries no time is refused at the id
    fs.truncateSync(incr, start);
    const bad = `${ID.slice(0, 2)}X${ID.slice(3)}`;
    fs.appendFileSync(incr, withCrc(`${env(bad)}*3\r\n${bulk('SET')}${bulk('k')}${bulk('2')}`));
    err = (await openApp({ dir }).catch((e: unknown) => e)) as CorruptLogError;
    expect(err).toBeInstanceOf(CorruptLogError);
    expect(err.message).toContain(
      `${INCR}: bad format at byte offset ${start + Buffer.byteLength(`*2\r\n${bulk('@env')}$36\r\n`)}: expected a UUID carrying the time in ms`,
    );
    // and the long form of one id: its time and versions read back, a bad time refused at it
    fs.truncateSync(incr, start);
    const long = (time: string, versions: string) =>
      `*4\r\n${bulk('@env')}${bulk(ID)}${bulk(time)}${bulk(versions)}`;
    fs.appendFileSync(incr, withCrc(`${long('7', '3')}*2\r\n${bulk('E')}${bulk('1')}`));
    fs.appendFileSync(incr, withCrc(`${long('8', '')}*2\r\n${bulk('E')}${bulk('2')}`));
    const tail = (await replayAll(new AofStore({ dir }))).slice(-2);
    expect(tail[0]).toMatchObject({ seq: 7, time: 7, ids: [ID], versions: [3] });
    expect(tail[1]).toMatchObject({ seq: 8, time: 8, ids: [ID] });
    expect('versions' in tail[1]).toBe(false);
    const before = fs.statSync(incr).size;
    fs.appendFileSync(incr, withCrc(`${long('-1', '')}*2\r\n${bulk('E')}${bulk('3')}`));
    err = (await openApp({ dir }).catch((e: unknown) => e)) as CorruptLogError;
    expect(err).toBeInstanceOf(CorruptLogError);
    const timeAt = before + Buffer.byteLength(`*4\r\n${bulk('@env')}${bulk(ID)}$2\r\n`);
    expect(err.message).toContain(
      `${INCR}: bad format at byte offset ${timeAt}: expected the envelope time in ms`,
    );
  });

  it('refuses envelope metadata that is not a JSON object, at its byte offset, and before a later bad record', async () => {
    for (const [metadata, expected] of [
      ['{x}', 'the envelope metadata as JSON'],
      ['[1]', 'the envelope metadata as a JSON object'],
      ['7', 'the envelope metadata as a JSON object'],
      ['x'.repeat(20_000), 'the envelope metadata as JSON'],
    ] as const) {
      fs.rmSync(dir, { recursive: true, force: true });
      const offsets = await threeGroups();
      const fine = withCrc(
        `*5\r\n${bulk('@env')}${bulk(ID)}${bulk('1')}${bulk('')}${bulk('{"a":1}')}*2\r\n${bulk('E')}${bulk('{"b":2}')}`,
      );
      const head = `*5\r\n${bulk('@env')}${bulk(ID)}${bulk('1')}${bulk('')}$${metadata.length}\r\n`;
      const bad = withCrc(`${head}${metadata}\r\n*2\r\n${bulk('E')}${bulk('{"b":2}')}`);
      fs.appendFileSync(incr, `${fine}${bad}*2\r\n${bulk('DEL')}$x\r\n`);
      const at = offsets[3] + Buffer.byteLength(fine) + Buffer.byteLength(head);
      const err = (await openApp({ dir }).catch((e: unknown) => e)) as CorruptLogError;
      expect(err).toBeInstanceOf(CorruptLogError);
      expect(err.message).toContain(`${INCR}: bad format at byte offset ${at}: expected ${expected}`);
    }
  });
});
