import * as fs from 'node:fs';
import * as path from 'node:path';

/*
 * The synchronous durable-write steps of the AOF tools (a tool runs alone under the store's
 * lock, so blocking calls are fine): a file's bytes are durable after its fsync, a new or
 * renamed name after its folder's fsync. Replacing a file goes through a temp file so that a
 * crash leaves the old content or the new one, never a mix.
 */

/** fsync of one file by path. */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync of a folder, so that a rename or a new name in it is durable. */
export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes `bytes` to `file` through a temp file, fsync and rename: a crash leaves the old or the new content. */
export function replaceFile(file: string, bytes: Buffer | string): void {
  const tmp = path.join(path.dirname(file), `temp-appendonly-cli-${path.basename(file)}`);
  fs.writeFileSync(tmp, bytes, { mode: 0o600 });
  fsyncFile(tmp);
  fs.renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}
