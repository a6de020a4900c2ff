import {
  CorruptLogError,
  DEL,
  type DomainEvent,
  FLUSHALL,
  type JsonValue,
  SET,
  TruncatedLogError,
} from 'appendonly';
import { type ReplayRecord, toReplayGroup } from '../../src/store/replay-batch';
import { type LogFile, readLog } from '../../adapters/aof/reader';
import { encodeGroup } from '../../adapters/aof/record-codec';
import { RespEncoder } from '../../adapters/aof/resp';
import fc from 'fast-check';
import { MemoryFileSystem } from './memory-fs';

/*
 * Corruption of AOF files, property-based: the real reader (`readLog`, on the real RespScanner)
 * fed random bytes, RESP-shaped token soup, and valid logs that were cut, bit-flipped, or had
 * bytes inserted, deleted or overwritten anywhere. Whatever it is fed, the reader either yields
 * records that are a prefix of the original log, or throws CorruptLogError / TruncatedLogError
 * naming one of its files and an offset inside it: never another exception, never a wrong
 * record, never more work than two passes over the bytes. A strict prefix (a repair) is only
 * allowed when the damage is in the last group of the last file: a flipped byte in an earlier
 * group is an error, never a silent cut of acknowledged groups after it.
 */

const soak = process.env.APPENDONLY_SOAK ? 10 : 1;
const runs = (n: number) => ({ numRuns: n * soak });

const BASE = 'appendonly.aof.1.base.aof';
const INCR = 'appendonly.aof.1.incr.aof';
/** `#CRC:` + 8 hex digits + CRLF. */
const CRC_LINE = 15;

const name = fc.constantFrom('Counted', 'Deposited', 'set', 'del', 'E');
const key = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('ü', 'a b', 'x\r\ny', '#CRC:'));
const value = fc.jsonValue({ maxDepth: 2 }) as unknown as fc.Arbitrary<JsonValue>;
const event: fc.Arbitrary<DomainEvent> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(key, value).map(([k, v]) => SET(k, v) as DomainEvent) },
  {
    weight: 1,
    arbitrary: fc.array(key, { minLength: 1, maxLength: 3 }).map((ks) => DEL(...ks) as DomainEvent),
  },
  { weight: 1, arbitrary: fc.constant(FLUSHALL() as DomainEvent) },
  { weight: 3, arbitrary: fc.tuple(name, value).map(([type, data]) => ({ type, data }) as DomainEvent) },
);
const group = fc.record({
  events: fc.array(event, { minLength: 1, maxLength: 4 }),
  ts: fc.option(fc.integer({ min: 0, max: 2_000_000_000 }), { nil: -1 }),
});

interface Log {
  readonly files: { name: string; data: Buffer; kind: 'base' | 'incr' }[];
  /** Byte ranges of the groups of the incr file. */
  readonly groups: { start: number; end: number }[];
}

const log: fc.Arbitrary<Log> = fc
  .record({
    base: fc.option(fc.array(fc.tuple(key, value), { minLength: 1, maxLength: 5 }), { nil: null }),
    groups: fc.array(group, { minLength: 1, maxLength: 8 }),
  })
  .map(({ base, groups }) => {
    const files: Log['files'] = [];
    if (base !== null) {
      const enc = new RespEncoder(256);
      for (const [k, v] of base) encodeGroup(enc, { seq: 1, time: 0, events: [SET(k, v)] }, -1);
      files.push({ name: BASE, data: Buffer.from(enc.bytes()), kind: 'base' });
    }
    const enc = new RespEncoder(256);
    const ranges: Log['groups'] = [];
    let seq = 1;
    for (const g of groups) {
      const start = enc.length;
      encodeGroup(enc, { seq, time: 0, events: g.events }, g.ts);
      ranges.push({ start, end: enc.length });
      seq += g.events.length;
    }
    files.push({ name: INCR, data: Buffer.from(enc.bytes()), kind: 'incr' });
    return { files, groups: ranges };
  });

/** A record without where it was read: what a replay hands to the app. */
type Seen = ['snapshot', number] | ['entry', string, unknown] | ['group', number, number, DomainEvent[]];

interface Outcome {
  readonly records: Seen[];
  readonly cuts: { file: string; offset: number }[];
  readonly error?: unknown;
  readonly fs: MemoryFileSystem;
}

/**
 * Reads the log as a tool does (every command a group) and as the store does (`setRecords`: a
 * one-SET command as a `set` record); both must see the same records, cuts and error.
 */
async function read(files: Log['files'], loadTruncated: boolean, chunkSize: number): Promise<Outcome> {
  const plain = await readOnce(files, loadTruncated, chunkSize, false);
  const sets = await readOnce(files, loadTruncated, chunkSize, true);
  expect(sets.records).toEqual(plain.records);
  expect(sets.cuts).toEqual(plain.cuts);
  expect(String(sets.error ?? '')).toBe(String(plain.error ?? ''));
  return plain;
}

async function readOnce(
  files: Log['files'],
  loadTruncated: boolean,
  chunkSize: number,
  setRecords: boolean,
): Promise<Outcome> {
  const fs = new MemoryFileSystem(new Map(files.map((f) => [f.name, f.data])));
  const logFiles: LogFile[] = files.map((f) => ({
    name: f.name,
    path: f.name,
    kind: f.kind,
    seq: f.kind === 'base' ? 10 : undefined,
  }));
  const records: Seen[] = [];
  const cuts: Outcome['cuts'] = [];
  const see = (r: ReplayRecord): Seen =>
    r.kind === 'snapshot'
      ? ['snapshot', r.seq]
      : r.kind === 'entry'
        ? ['entry', r.key, r.value]
        : ['group', r.seq, r.time, [...toReplayGroup(r).events]];
  try {
    const options = {
      fs,
      loadTruncated,
      chunkSize,
      setRecords,
      warn: () => {},
      truncate: async (f: LogFile, offset: number) => void cuts.push({ file: f.name, offset }),
    };
    for await (const batch of readLog(logFiles, options, { lastSeq: 0, sizes: [] }))
      for (const r of batch) records.push(see(r));
    return { records, cuts, fs };
  } catch (error) {
    return { records, cuts, error, fs };
  }
}

/**
 * What holds for any input: a known error naming a file and an offset in it, and bounded work:
 * one pass over the bytes, plus at most one more over an unfinished tail (to tell a torn write
 * from a damaged length).
 */
function expectSane(out: Outcome, files: Log['files'], loadTruncated: boolean): void {
  const total = files.reduce((n, f) => n + f.data.length, 0);
  expect(out.fs.bytesRead).toBeLessThanOrEqual(2 * total);
  expect(out.fs.reads).toBeLessThanOrEqual(2 * (total + 2 * files.length));
  if (out.error === undefined) return;
  const err = out.error as CorruptLogError | TruncatedLogError;
  if (!(err instanceof CorruptLogError || (err instanceof TruncatedLogError && !loadTruncated))) throw err;
  const file = files.find((f) => f.name === err.file);
  expect(file).toBeDefined();
  expect(err.offset).toBeGreaterThanOrEqual(0);
  expect(err.offset).toBeLessThanOrEqual(file!.data.length);
  expect(err.message).toContain(`${err.file}: `);
  expect(err.message).toContain(`byte offset ${err.offset}`);
}

const chunk = fc.constantFrom(8, 64, 1 << 20);
const incrOnly = (data: Uint8Array): Log['files'] => [{ name: INCR, data: Buffer.from(data), kind: 'incr' }];

const tokens = fc.constantFrom(
  '*1\r\n',
  '*2\r\n',
  '*3\r\n',
  '*0\r\n',
  '*-1\r\n',
  '$3\r\n',
  '$1\r\n',
  '$0\r\n',
  '$2\r\n',
  '$999999999999\r\n',
  '$9999999999999999\r\n',
  'SET\r\n',
  'DEL\r\n',
  'MULTI\r\n',
  'EXEC\r\n',
  'FLUSHALL\r\n',
  '$5\r\nMULTI\r\n',
  '$4\r\nEXEC\r\n',
  '#CRC:00000000\r\n',
  '#CRC:zz\r\n',
  '#TS:1\r\n',
  '#\n',
  'a\r\n',
  '1\r\n',
  '{}\r\n',
  '[[[[\r\n',
  '\r\n',
  '\r',
  '\n',
  '#',
  '*',
  '$',
  '0',
  'x',
);

describe('the RESP reader on hostile bytes (fast-check)', () => {
  it('random bytes: a clear error or a load, in bounded work', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.boolean(),
        chunk,
        async (bytes, loadTruncated, size) => {
          const files = incrOnly(bytes);
          expectSane(await read(files, loadTruncated, size), files, loadTruncated);
        },
      ),
      runs(2000),
    );
  });

  it('RESP-shaped token soup: a clear error or a load, in bounded work', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(tokens, { maxLength: 40 }),
        fc.boolean(),
        chunk,
        async (parts, loadTruncated, size) => {
          const files = incrOnly(Buffer.from(parts.join(''), 'latin1'));
          expectSane(await read(files, loadTruncated, size), files, loadTruncated);
        },
      ),
      runs(2000),
    );
  });

  it('a valid log reads back as what was encoded, whatever the chunk size', async () => {
    await fc.assert(
      fc.asyncProperty(log, chunk, async (l, size) => {
        const out = await read(l.files, false, size);
        expect(out.error).toBeUndefined();
        expect(out.records.filter((r) => r[0] === 'group')).toHaveLength(l.groups.length);
        expect(out.records).toEqual((await read(l.files, false, 1 << 20)).records);
      }),
      runs(500),
    );
  });

  it('a valid log cut anywhere: exactly the groups whose #CRC line is whole, cut where the rule says, or TruncatedLogError', async () => {
    await fc.assert(
      fc.asyncProperty(log, fc.nat(), fc.boolean(), chunk, async (l, at, loadTruncated, size) => {
        const incr = l.files[l.files.length - 1];
        const cut = at % (incr.data.length + 1);
        const files = [...l.files.slice(0, -1), { ...incr, data: incr.data.subarray(0, cut) }];
        const full = (await read(l.files, true, 1 << 20)).records;
        const out = await read(files, loadTruncated, size);
        expectSane(out, files, loadTruncated);
        // A group stands once its #CRC line is whole. Only the first of the file may stand without
        // it (nothing before it says that its writer writes #CRC lines: a hand-edited file), and
        // only if what is left of the line is nothing or `#` (which may start a #TS line; it is cut).
        const records = l.groups[0].end - CRC_LINE;
        const stands = (g: Log['groups'][number], i: number) =>
          g.end <= cut || (i === 0 && (cut === records || cut === records + 1));
        const standing = l.groups.filter(stands).length;
        const torn = l.groups.find((g, i) => g.start < cut && cut < g.end && !stands(g, i));
        const cutAt = torn !== undefined ? torn.start : cut === records + 1 ? records : undefined;
        const before = full.filter((r) => r[0] !== 'group').length;
        if (!loadTruncated && cutAt !== undefined) {
          expect(out.error).toBeInstanceOf(TruncatedLogError);
          expect((out.error as TruncatedLogError).offset).toBe(cutAt);
          return;
        }
        expect(out.error).toBeUndefined();
        expect(out.records).toEqual(full.slice(0, before + standing));
        expect(out.cuts).toEqual(cutAt === undefined ? [] : [{ file: INCR, offset: cutAt }]);
      }),
      runs(1000),
    );
  });

  const mutation = fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({
      op: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        tokens.map((t) => Buffer.from(t, 'latin1')),
      ),
    }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
    fc.record({
      op: fc.constant('overwrite' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
    // A length or argument count made larger: small (the record swallows its neighbours) or huge.
    fc.record({
      op: fc.constant('length' as const),
      at: fc.nat(),
      more: fc.oneof(fc.integer({ min: 1, max: 300 }), fc.constantFrom(999999999999, 2 ** 40)),
    }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

  /** Applies `m` at a position of `data`; returns the new bytes and the position hit. */
  function mutate(data: Buffer, m: Mutation): { bytes: Buffer; at: number } {
    if (m.op === 'flip') {
      if (data.length === 0) return { bytes: data, at: 0 };
      const at = m.at % data.length;
      const bytes = Buffer.from(data);
      bytes[at] ^= 1 << m.bit;
      return { bytes, at };
    }
    if (m.op === 'length') {
      const headers = [...data.toString('latin1').matchAll(/[*$](\d+)\r\n/g)];
      if (headers.length === 0) return { bytes: data, at: 0 };
      const h = headers[m.at % headers.length];
      const at = h.index + 1;
      const digits = Buffer.from(String(Number(h[1]) + m.more), 'latin1');
      return { bytes: Buffer.concat([data.subarray(0, at), digits, data.subarray(at + h[1].length)]), at };
    }
    const at = m.at % (data.length + 1);
    if (m.op === 'insert')
      return { bytes: Buffer.concat([data.subarray(0, at), m.bytes, data.subarray(at)]), at };
    if (m.op === 'delete')
      return { bytes: Buffer.concat([data.subarray(0, at), data.subarray(at + m.count)]), at };
    return { bytes: Buffer.concat([data.subarray(0, at), m.bytes, data.subarray(at + m.bytes.length)]), at };
  }

  it('one mutation anywhere (flip, insert, delete, overwrite, a larger length): a clear error, or a prefix of the log, cut only in its last group', async () => {
    await fc.assert(
      fc.asyncProperty(
        log,
        mutation,
        fc.nat(),
        fc.boolean(),
        chunk,
        async (l, m, which, loadTruncated, size) => {
          const target = which % l.files.length;
          const { bytes, at } = mutate(l.files[target].data, m);
          const files = l.files.map((f, i) => (i === target ? { ...f, data: bytes } : f));
          const full = (await read(l.files, true, 1 << 20)).records;
          const out = await read(files, loadTruncated, size);
          expectSane(out, files, loadTruncated);
          // Never a wrong record, not even before an error: what was yielded is the original's.
          expect(out.records).toEqual(full.slice(0, out.records.length));
          if (out.error !== undefined || out.records.length === full.length) return;
          // A strict prefix is a repair of a torn tail: the damage must be in the last group of the last file.
          expect(target).toBe(files.length - 1);
          expect(at).toBeGreaterThanOrEqual(l.groups[l.groups.length - 1].start);
        },
      ),
      runs(3000),
    );
  });

  it('several mutations at once: still a clear error or a load, in bounded work', async () => {
    await fc.assert(
      fc.asyncProperty(
        log,
        fc.array(mutation, { minLength: 2, maxLength: 6 }),
        fc.boolean(),
        chunk,
        async (l, ms, loadTruncated, size) => {
          const incr = l.files[l.files.length - 1];
          let data = incr.data;
          for (const m of ms) data = mutate(data, m).bytes;
          const files = [...l.files.slice(0, -1), { ...incr, data }];
          expectSane(await read(files, loadTruncated, size), files, loadTruncated);
        },
      ),
      runs(1000),
    );
  });
});
