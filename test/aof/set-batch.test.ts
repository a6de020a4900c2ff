import * as fs from 'node:fs';
import * as path from 'node:path';
import { CorruptLogError, DEL, SET } from 'appendonly';
import { type ReplayRecord, toReplayGroup } from '../../src/store/replay-batch';
import { nodeFileSystem } from 'appendonly/adapters/aof';
import { type LogFile, readLog } from '../../adapters/aof/reader';
import { encodeGroup } from '../../adapters/aof/record-codec';
import { RespEncoder } from '../../adapters/aof/resp';
import { setWithCrc, tempDir } from './helpers';

/*
 * The replay reader decodes SET records in batches (adapters/aof/set-batch.ts). These cases
 * check what a record-by-record reader gave for free: a bad value is reported at its own byte
 * offset, the first one in file order wins, and an unfinished group is still read for corruption.
 */

/** `n` good one-SET groups, as the store writes them. */
function goodGroups(n: number, from = 1): string {
  const enc = new RespEncoder();
  for (let i = 0; i < n; i++)
    encodeGroup(enc, { seq: from + i, time: 0, events: [SET(`k${i}`, { n: i, s: 'x' })] }, -1);
  return enc.bytes().toString('latin1');
}

const MULTI = '*1\r\n$5\r\nMULTI\r\n';

describe('AOF reader: SET values decoded in batches', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir()));
  afterEach(() => cleanup());

  async function read(
    content: string,
    options: {
      kind?: 'base' | 'incr';
      chunkSize?: number;
      loadTruncated?: boolean;
      setRecords?: boolean;
    } = {},
  ): Promise<{ records: ReplayRecord[]; warnings: string[]; error: unknown }> {
    const file = path.join(dir, 'x.aof');
    fs.writeFileSync(file, content);
    const files: LogFile[] = [
      { name: 'x.aof', path: file, kind: options.kind ?? 'incr', seq: options.kind === 'base' ? 0 : 1 },
    ];
    const records: ReplayRecord[] = [];
    const warnings: string[] = [];
    let error: unknown = null;
    try {
      const opts = {
        fs: nodeFileSystem,
        loadTruncated: options.loadTruncated ?? true,
        truncate: async () => {},
        warn: (m: string) => warnings.push(m),
        chunkSize: options.chunkSize,
        setRecords: options.setRecords,
      };
      for await (const batch of readLog(files, opts, { lastSeq: 0, sizes: [] })) records.push(...batch);
    } catch (err) {
      error = err;
    }
    return { records, warnings, error };
  }

  function expectBadValueAt(error: unknown, offset: number): void {
    expect(error).toBeInstanceOf(CorruptLogError);
    expect((error as CorruptLogError).offset).toBe(offset);
    expect((error as Error).message).toContain('expected the value of SET as JSON');
  }

  it('refuses a bad value in a base file at its byte offset, and reads good entries whole', async () => {
    const good = `${setWithCrc('a', '1')}${setWithCrc('b', '{"x":[1,"\\u0000"]}')}`;
    const ok = await read(good, { kind: 'base' });
    expect(ok.error).toBeNull();
    expect(ok.records).toEqual([
      { kind: 'snapshot', seq: 0 },
      { kind: 'entry', key: 'a', value: 1 },
      { kind: 'entry', key: 'b', value: { x: [1, '\u0000'] } },
    ]);
    const bad = await read(`${good}${setWithCrc('c', '{x}')}`, { kind: 'base' });
    expectBadValueAt(bad.error, good.length + setWithCrc('c', '{x}').indexOf('{x}'));
  });

  it('gives the same offset for a bad value whatever the chunk size of the read', async () => {
    const before = goodGroups(40);
    const content = `${before}${setWithCrc('bad', '[1,}')}${goodGroups(5, 41)}`;
    const at = before.length + setWithCrc('bad', '[1,}').indexOf('[1,}');
    for (const chunkSize of [7, 64, 1000, 1 << 20])
      expectBadValueAt((await read(content, { chunkSize })).error, at);
  });

  it('reports a bad value inside a MULTI before a malformed record later in the same group', async () => {
    const before = goodGroups(3);
    const content = `${before}${MULTI}*3\r\n$3\r\nSET\r\n$1\r\na\r\n$3\r\n{x}\r\n${MULTI}`;
    expectBadValueAt((await read(content)).error, content.indexOf('{x}'));
  });

  it('cuts an unfinished MULTI of good SETs, but refuses one whose whole SET holds a bad value', async () => {
    const before = goodGroups(3);
    const torn = '*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$5\r\n{"a"';
    const good = await read(`${before}${MULTI}*3\r\n$3\r\nSET\r\n$1\r\na\r\n$3\r\n[1]\r\n${torn}`);
    expect(good.error).toBeNull();
    expect(good.records).toHaveLength(3);
    expect(good.warnings.join('\n')).toContain(`cutting it at byte offset ${before.length}`);
    const content = `${before}${MULTI}*3\r\n$3\r\nSET\r\n$1\r\na\r\n$3\r\n{x}\r\n${torn}`;
    const bad = await read(content);
    expectBadValueAt(bad.error, content.indexOf('{x}'));
    expect(bad.warnings).toEqual([]);
  });

  it('parses a value of 16 KiB or more on its own, and still reports an earlier bad value first', async () => {
    const big = JSON.stringify({ text: 'é'.repeat(12_000) }); // 24 KB of UTF-8
    const ok = await read(`${goodGroups(2)}${setWithCrc('big', big)}${goodGroups(2, 4)}`);
    expect(ok.error).toBeNull();
    expect(ok.records.map((r) => (r.kind === 'group' ? r.events[0].data : null))).toEqual([
      { key: 'k0', value: { n: 0, s: 'x' } },
      { key: 'k1', value: { n: 1, s: 'x' } },
      { key: 'big', value: JSON.parse(big) },
      { key: 'k0', value: { n: 0, s: 'x' } },
      { key: 'k1', value: { n: 1, s: 'x' } },
    ]);
    const badBig = `${big.slice(0, -1)},}`;
    const alone = `${goodGroups(2)}${setWithCrc('big', badBig)}`;
    expectBadValueAt(
      (await read(alone)).error,
      Buffer.byteLength(alone) - Buffer.byteLength(badBig) - 2 - 15,
    );
    const both = `${goodGroups(2)}${setWithCrc('small', '{x}')}${setWithCrc('big', badBig)}`;
    expectBadValueAt((await read(both)).error, both.indexOf('{x}'));
  });

  it('with setRecords, gives a one-SET command as a set record and everything else as before', async () => {
    const enc = new RespEncoder();
    const groups = [
      { seq: 1, time: 0, events: [SET('a', { x: '"\\\u0001é' })] },
      { seq: 2, time: 0, events: [SET('b', 1), SET('c', [2])] },
      { seq: 4, time: 0, events: [DEL('a')] },
      { seq: 5, time: 0, events: [SET('k "q"', null)] },
    ];
    encodeGroup(enc, groups[0], 1_700_000_000);
    for (const g of groups.slice(1)) encodeGroup(enc, g, -1);
    const content = enc.bytes().toString();
    for (const chunkSize of [5, 1 << 20]) {
      const plain = await read(content, { chunkSize });
      const sets = await read(content, { chunkSize, setRecords: true });
      expect(sets.error).toBeNull();
      expect(sets.records.map((r) => r.kind)).toEqual(['set', 'group', 'group', 'set']);
      expect(
        sets.records.map((r) => (r.kind === 'set' || r.kind === 'group' ? toReplayGroup(r) : r)),
      ).toEqual(plain.records);
      expect(sets.records[0]).toMatchObject({ time: 1_700_000_000_000, offset: 0 });
    }
  });
});
