import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEL, type DomainEvent, type EventGroup, FLUSHALL, type JsonValue, SET } from 'appendonly';
import type { ReplayRecord } from '../../src/store/replay-batch';
import { nodeFileSystem } from 'appendonly/adapters/aof';
import { type LogFile, readLog } from '../../adapters/aof/reader';
import { encodeGroup } from '../../adapters/aof/record-codec';
import { RECORD, RespEncoder, RespScanner } from '../../adapters/aof/resp';
import * as fc from 'fast-check';
import { tempDir } from './helpers';

/** Writes groups with the append path's encoder, then reads them back with the replay reader. */
async function roundTrip(groups: EventGroup[], chunkSize: number, dir: string): Promise<ReplayRecord[]> {
  const enc = new RespEncoder(16);
  for (const g of groups) encodeGroup(enc, g, -1);
  const file = path.join(dir, 'x.incr.aof');
  fs.writeFileSync(file, enc.bytes());
  const files: LogFile[] = [{ name: 'x.incr.aof', path: file, kind: 'incr', seq: groups[0]?.seq ?? 1 }];
  const out: ReplayRecord[] = [];
  const warnings: string[] = [];
  const options = {
    fs: nodeFileSystem,
    loadTruncated: false,
    truncate: async () => {},
    warn: (m: string) => warnings.push(m),
    chunkSize,
  };
  for await (const batch of readLog(files, options, { lastSeq: 0, sizes: [] })) out.push(...batch);
  expect(warnings).toEqual([]);
  return out;
}

function groupsOf(events: DomainEvent<string, unknown>[][]): EventGroup[] {
  let seq = 1;
  return events.map((evs) => {
    const g = { seq, time: 0, events: evs as DomainEvent[] };
    seq += evs.length;
    return g;
  });
}

describe('record codec: EventGroup → RESP → ReplayRecord', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  it('round-trips built-in and user events, single and in MULTI, with awkward bytes, whatever the chunk size', async () => {
    const groups = groupsOf([
      [SET('k', 'v')],
      [SET('crlf\r\nkey', 'a\r\n*1\r\n$4\r\nEXEC\r\n#CRC:00000000\r\n')],
      [SET('ü🚀', { deep: [1, -0.5, null, true, 'x'] }), DEL('a', 'b\r\n'), FLUSHALL()],
      [{ type: 'Deposited', data: { account: 'a', amount: 1e21 } }],
      [{ type: 'set', data: 'lower-case user event, not Redis SET' }],
      [DEL()],
      [SET('', '')],
      // Integers read without JSON.parse, and numbers that must still go through it.
      [
        SET('i', 0),
        SET('j', -7),
        SET('k', 999_999_999_999_999),
        SET('l', 1_234_567_890_123_456),
        SET('m', 1.5),
        SET('n', -0.25),
        SET('o', 1e21),
      ],
      // Byte lengths with more digits than character lengths: the header grows after the bytes.
      [SET('é'.repeat(5), 'é'.repeat(49)), SET('€'.repeat(34), '🚀'.repeat(25)), SET('k', 'ü'.repeat(4096))],
    ]);
    for (const chunk of [7, 64, 1 << 20]) {
      const out = await roundTrip(groups, chunk, dir);
      expect(withoutPosition(out)).toEqual(groups.map((g) => ({ kind: 'group', ...g })));
      // Each group says where it starts, for error messages: increasing offsets from 0.
      const offsets = out.map((r) => (r as { offset?: number }).offset);
      expect(offsets[0]).toBe(0);
      for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]!);
    }
  });

  it('round-trips a 5 MB value read in 64 KiB chunks', async () => {
    const big = 'é'.repeat(2_500_000);
    const groups = groupsOf([[SET('a', 1)], [SET('big', big)], [SET('b', 2)]]);
    const out = await roundTrip(groups, 64 * 1024, dir);
    expect(withoutPosition(out)).toEqual(groups.map((g) => ({ kind: 'group', ...g })));
  });

  it('round-trips any JSON value and any key (property)', async () => {
    const event = fc.oneof(
      fc.tuple(fc.string({ unit: 'binary' }), fc.jsonValue()).map(([k, v]) => SET(k, v as JsonValue)),
      fc.array(fc.string({ unit: 'binary' }), { maxLength: 3 }).map((keys) => DEL(...keys)),
      fc.constant(FLUSHALL()),
      fc.jsonValue().map((data) => ({ type: 'Custom_event.v1', data: data as JsonValue })),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(event, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 5, max: 300 }),
        async (events, chunk) => {
          const groups = groupsOf(events);
          const out = await roundTrip(groups, chunk, dir);
          // JSON cannot tell -0 from 0: compare through JSON, as the log does.
          expect(JSON.parse(JSON.stringify(withoutPosition(out)))).toEqual(
            JSON.parse(JSON.stringify(groups.map((g) => ({ kind: 'group', ...g })))),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('reads integers as JSON.parse does, and refuses what JSON refuses', async () => {
    const texts = [
      '0',
      '-0',
      '12',
      '-12',
      '007',
      '-',
      '1-',
      '123456789012345',
      '1234567890123456',
      '1e3',
      '12a',
    ];
    const expected = texts.map((v) => {
      try {
        return JSON.parse(v) as number;
      } catch {
        return 'refused';
      }
    });
    const file = path.join(dir, 'ints.incr.aof');
    const options = { fs: nodeFileSystem, loadTruncated: false, truncate: async () => {}, warn: () => {} };
    const got: unknown[] = [];
    // Each record in a file of its own, so that a refused one does not hide the others.
    for (const text of texts) {
      const enc = new RespEncoder();
      enc.arrayHeader(3);
      enc.bulk('SET');
      enc.bulk('k');
      enc.bulk(text);
      fs.writeFileSync(file, enc.bytes());
      try {
        for await (const batch of readLog([{ name: 'x', path: file, kind: 'incr' }], options, {
          lastSeq: 0,
          sizes: [],
        })) {
          for (const r of batch)
            if (r.kind === 'group') got.push((r.events[0].data as { value: unknown }).value);
        }
      } catch {
        got.push('refused');
      }
    }
    expect(got).toEqual(expected);
    expect(Object.is(got[1], -0)).toBe(true);
  });

  it('writes exactly the RESP of docs/ARCHITECTURE.md, followed by a #CRC line', () => {
    const enc = new RespEncoder();
    encodeGroup(
      enc,
      { seq: 1, time: 1_700_000_000_500, events: [SET('k', 'v'), { type: 'E', data: 1 }] as DomainEvent[] },
      1_700_000_000,
    );
    const text = enc.bytes().toString('latin1');
    expect(text).toMatch(
      /^#TS:1700000000\r\n\*1\r\n\$5\r\nMULTI\r\n\*3\r\n\$3\r\nSET\r\n\$1\r\nk\r\n\$3\r\n"v"\r\n\*2\r\n\$1\r\nE\r\n\$1\r\n1\r\n\*1\r\n\$4\r\nEXEC\r\n#CRC:[0-9a-f]{8}\r\n$/,
    );
  });

  it('the scanner reports an incomplete record as NEED_MORE at every cut, and the whole one as RECORD', () => {
    const enc = new RespEncoder();
    encodeGroup(enc, { seq: 1, time: 0, events: [SET('key', { a: 'b' })] as DomainEvent[] }, -1);
    const bytes = enc.bytes();
    const recordEnd = bytes.indexOf('#CRC');
    const sc = new RespScanner();
    for (let cut = 0; cut < recordEnd; cut++) expect(sc.scan(bytes, 0, cut)).toBe(2);
    expect(sc.scan(bytes, 0, recordEnd)).toBe(RECORD);
    expect(sc.end).toBe(recordEnd);
  });
});

/** The records without the position fields (file, offset) that only error messages use. */
function withoutPosition(records: readonly unknown[]): unknown[] {
  return records.map((r) => {
    const { file: _file, offset: _offset, ...rest } = r as { file?: string; offset?: number };
    return rest;
  });
}

describe('RespEncoder.bulkJson: the bytes of bulk(JSON.stringify(value)), whichever path writes them', () => {
  const viaStringify = (value: unknown): Buffer => {
    const enc = new RespEncoder();
    enc.bulk(JSON.stringify(value));
    return Buffer.from(enc.bytes());
  };
  const viaBulkJson = (value: unknown, before = 0): Buffer => {
    const enc = new RespEncoder(64);
    for (let i = 0; i < before; i++) enc.raw(Buffer.from('x'));
    enc.bulkJson(value);
    return Buffer.from(enc.bytes().subarray(before));
  };

  it('equals JSON.stringify on generated JSON values (any length header, any offset)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(300), (value, before) => {
        expect(viaBulkJson(value, before).toString('latin1')).toBe(viaStringify(value).toString('latin1'));
      }),
      { numRuns: 2000 },
    );
  });

  it('equals JSON.stringify on the values it hands to JSON.stringify, and on its edge cases', () => {
    class Point {
      constructor(
        readonly x: number,
        readonly y: number,
      ) {}
    }
    const cases: unknown[] = [
      -0,
      0,
      -12,
      1.5,
      -1e-7,
      1e21,
      2 ** 53,
      Number.MAX_VALUE,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '',
      'a"b',
      'back\\slash',
      'tab\there',
      'del\u007f',
      'é',
      '\ud800',
      'x'.repeat(9),
      'x'.repeat(98),
      'x'.repeat(5000),
      { a: undefined, b: 1 },
      { f: () => 1, b: 1 },
      { toJSON: () => 'replaced' },
      { toJSON: 'not a function' },
      new Date(0),
      new Point(1, 2),
      Object.create(null),
      Object.assign(Object.create(null), { k: 'v' }),
      { 2: 'b', 1: 'a', z: 0, y: [1, { n: null }] },
      Object.assign([1, 2, 3], { length: 5 }), // holes: JSON writes null
      [undefined],
      [true, false, null],
      Object.assign([1, 2], { extra: 'ignored' }),
      { deep: [[[[[[[[[[{ x: 1 }]]]]]]]]]] },
      Array.from({ length: 600 }, (_, i) => ({ i, name: `n${i}` })),
    ];
    // Around the most text written directly (JSON_ROOM - 16 = 4080 bytes), at offsets that leave
    // the buffer nearly full.
    for (let n = 4070; n <= 4100; n++) cases.push('y'.repeat(n - 2), ['z'.repeat(n - 4)]);
    for (const value of cases)
      for (const before of [0, 7, 4000, 65_500])
        expect(viaBulkJson(value, before).toString('latin1')).toBe(viaStringify(value).toString('latin1'));
  });
});
