import { randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { crc32, readHex8, writeHex8 } from '../../adapters/aof/crc';

describe('crc32: the table version agrees with zlib.crc32', () => {
  it('on every length from 0 to 300 and on large spans, at odd offsets', () => {
    const buf = randomBytes(20_000);
    for (let len = 0; len <= 300; len++) {
      for (const start of [0, 1, 3, 7])
        expect(crc32(buf, start, start + len)).toBe(zlibCrc32(buf.subarray(start, start + len)));
    }
    for (const len of [4095, 4096, 4097, 19_000])
      expect(crc32(buf, 5, 5 + len)).toBe(zlibCrc32(buf.subarray(5, 5 + len)));
  });

  it('writes and reads 8 hex digits', () => {
    const b = Buffer.alloc(8);
    for (const v of [0, 1, 0xdeadbeef, 0xffffffff, 0x0000abcd]) {
      writeHex8(b, 0, v);
      expect(b.toString('latin1')).toBe(v.toString(16).padStart(8, '0'));
      expect(readHex8(b, 0)).toBe(v);
    }
    expect(readHex8(Buffer.from('DEADBEEF'), 0)).toBe(0xdeadbeef);
    expect(readHex8(Buffer.from('deadbeeg'), 0)).toBe(-1);
  });
});
