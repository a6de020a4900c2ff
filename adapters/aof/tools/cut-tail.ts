import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileStamp } from '../../common/stamp';
import { fsyncDir, fsyncFile } from './durable';
import type { AofFile, AofLog } from './log-files';

/**
 * Cuts `file` at byte offset `at` (`check --fix`, as redis-check-aof --fix), saving the bytes
 * from `at` to `size` (the file's size as it was checked) first to a side file `<name>.cut-<stamp>` in the log folder. Order is the invariant:
 * the side file is durable (file and folder fsynced) before the log is cut, and the bytes before
 * `at` are never rewritten, only the tail after them removed. The caller holds the lock and has
 * made a backup. Returns the side file's path.
 */
export function cutFileTail(log: AofLog, file: AofFile, at: number, size: number): string {
  const side = path.join(log.logDir, `${file.name}.cut-${fileStamp()}`);
  const fd = fs.openSync(file.path, 'r+');
  try {
    const lost = size - at;
    const tail = Buffer.allocUnsafe(lost);
    let got = 0;
    while (got < lost) {
      const n = fs.readSync(fd, tail, got, lost - got, at + got);
      if (n === 0) throw new Error(`${file.name} shrank while it was repaired`);
      got += n;
    }
    fs.writeFileSync(side, tail, { mode: 0o600 });
    fsyncFile(side);
    fsyncDir(log.logDir);
    fs.ftruncateSync(fd, at);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  return side;
}
