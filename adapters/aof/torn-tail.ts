import type { ByteWindow } from './byte-window';
import { readHex8 } from './crc';

/*
 * What a torn write can leave at the end of the last file, told apart from damage.
 *
 * The writer appends each group (`#TS` line, command or MULTI … EXEC, `#CRC` line) with one
 * write, so a crash leaves a prefix of ONE group after the last whole one. Two shapes follow:
 * - the group's records stop short (Redis's "short read"): no whole `#CRC` line can follow the
 *   cut, since the group's own comes last; if one does, a length further up only seemed to run
 *   past the end ({@link wholeCrcLineAfter});
 * - the records are whole but the `#CRC` line is not ({@link isCrcLinePrefix}), or is missing
 *   where the writer puts one after every group: the command is unverified, and is cut whole, as
 *   LevelDB's and PostgreSQL's log readers drop a tail record whose checksum is incomplete.
 */

/** `#CRC:` */
const CRC_TAG = Buffer.from('#CRC:', 'latin1');
/** `#CRC:` + 8 hex digits + CRLF. */
export const CRC_LINE_LENGTH = CRC_TAG.length + 10;

/**
 * True when `buf[start..end)` (the bytes left at the end of the file) is a strict prefix of a
 * `#CRC:<8 hex>\r\n` line: what a torn write leaves of the line. `#` alone does not count: it
 * may as well start the next group's `#TS` line, and a file without #CRC lines keeps its command.
 */
export function isCrcLinePrefix(buf: Buffer, start: number, end: number): boolean {
  const n = end - start;
  if (n < 2 || n >= CRC_LINE_LENGTH) return false;
  for (let i = 0; i < n; i++) {
    const c = buf[start + i];
    if (i < CRC_TAG.length) {
      if (c !== CRC_TAG[i]) return false;
    } else if (i < CRC_TAG.length + 8) {
      if (!isHexDigit(c)) return false;
    } else if (c !== 13) {
      return false; // only `\r` can come last: with `\n` the line would be whole
    }
  }
  return true;
}

function isHexDigit(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
}

/**
 * Where the first whole `#CRC:<8 hex>\r\n` line at or after file offset `from` ends, or -1. Read
 * in 64 KiB steps: memory stays flat however much of the file is left. Only called when the log
 * ends in an unfinished group, so a healthy load never pays for it.
 */
export async function wholeCrcLineAfter(window: ByteWindow, from: number): Promise<number> {
  const step = 64 * 1024;
  const size = window.size;
  const buf = Buffer.allocUnsafe(step + CRC_LINE_LENGTH); // a line cut by a step boundary is found in the next step
  for (let at = from; at < size; at += step) {
    const n = await window.fs.read(window.fd, buf, 0, Math.min(buf.length, size - at), at);
    if (n === 0) return -1;
    for (let i = buf.indexOf(CRC_TAG); i >= 0 && i < n; i = buf.indexOf(CRC_TAG, i + 1)) {
      if (i + CRC_LINE_LENGTH > n) break;
      if (readHex8(buf, i + 5) >= 0 && buf[i + 13] === 13 && buf[i + 14] === 10)
        return at + i + CRC_LINE_LENGTH;
    }
  }
  return -1;
}
