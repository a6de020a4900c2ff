import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileStamp } from '../../common/stamp';
import { fsyncDir, fsyncFile } from './durable';
import type { AofLog } from './log-files';

/**
 * Copies the manifest and `names` (files of the log folder) into a new backup folder beside the
 * log folder, `<appendDirname>.backup-<stamp>-<command>`, durably, before a tool changes any of
 * them. Beside it, never inside: the store would take stray files there for a log without a
 * manifest. The files keep their names, so restoring is copying them back.
 */
export function backupLogFiles(
  log: AofLog,
  command: string,
  names: readonly string[],
): { readonly dir: string; readonly files: number } {
  let dir = path.join(log.dataDir, `${log.appendDirname}.backup-${fileStamp()}-${command}`);
  for (let n = 2; fs.existsSync(dir); n++) dir = `${dir.replace(/-\d+$/, '')}-${n}`;
  fs.mkdirSync(dir, { mode: 0o700 });
  const all = [path.basename(log.manifestPath), ...names];
  for (const name of new Set(all)) {
    const to = path.join(dir, name);
    fs.copyFileSync(path.join(log.logDir, name), to);
    fsyncFile(to);
  }
  fsyncDir(dir);
  fsyncDir(path.dirname(dir));
  return { dir, files: all.length };
}
