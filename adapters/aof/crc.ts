import { crc32 as zlibCrc32 } from 'node:zlib';

/*
 * CRC-32 (IEEE 802.3, the one of zlib and of Node's `zlib.crc32`) over a range of a Buffer.
 *
 * Node's zlib.crc32 is native, but each call costs a Buffer view (subarray) and a crossing into
 * C++: about 200 ns, four times the cost of the ~50-byte group it checksums. This slicing-by-8
 * table version reads the bytes where they are and costs ~55 ns for such a group; above a few
 * KiB the native one is faster and is used instead. Both give the same value (tested).
 */

const TABLE = new Int32Array(256 * 8);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = TABLE[n];
  for (let t = 1; t < 8; t++) {
    c = TABLE[c & 0xff] ^ (c >>> 8);
    TABLE[t * 256 + n] = c;
  }
}

/** Above this many bytes the native zlib.crc32 wins. */
const NATIVE_FROM = 4096;

/** The CRC-32 of `buf[start..end)`, as an unsigned 32-bit number. */
export function crc32(buf: Buffer, start: number, end: number): number {
  if (end - start >= NATIVE_FROM) return zlibCrc32(buf.subarray(start, end));
  const t = TABLE;
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = c ^ (buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24));
    c =
      t[1792 + (a & 0xff)] ^
      t[1536 + ((a >>> 8) & 0xff)] ^
      t[1280 + ((a >>> 16) & 0xff)] ^
      t[1024 + (a >>> 24)] ^
      t[768 + buf[i + 4]] ^
      t[512 + buf[i + 5]] ^
      t[256 + buf[i + 6]] ^
      t[buf[i + 7]];
  }
  for (; i < end; i++) c = t[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');

/** Writes `crc` as 8 lowercase hex digits at `buf[pos]`. */
export function writeHex8(buf: Buffer, pos: number, crc: number): void {
  for (let i = 7; i >= 0; i--) {
    buf[pos + i] = HEX[crc & 0xf];
    crc >>>= 4;
  }
}

/** Reads 8 hex digits (either case) at `buf[pos]`; -1 if they are not hex digits. */
export function readHex8(buf: Buffer, pos: number): number {
  let v = 0;
  for (let i = 0; i < 8; i++) {
    const c = buf[pos + i];
    let d: number;
    if (c >= 48 && c <= 57) d = c - 48;
    else if (c >= 97 && c <= 102) d = c - 87;
    else if (c >= 65 && c <= 70) d = c - 55;
    else return -1;
    v = v * 16 + d;
  }
  return v;
}
