import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatManifest, type Manifest } from '../adapters/aof/index';
import { note } from './output';
import type { AofTarget } from './target';

/*
 * Every destructive command copies what it is about to change before it changes anything, and
 * prints where. AOF backups are a folder beside the log folder (never inside it: the store
 * would take stray files there for a log without a manifest), holding the manifest and the
 * files touched, under their own names, so that restoring is copying them back.
 */

/** A timestamp for file names: 20261125T101530Z. */
export function stamp(): string {
  return new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Copies the manifest and `names` (files of the log folder) into a new backup folder; returns its path. */
export function backupAof(target: AofTarget, command: string, names: readonly string[]): string {
  let dir = path.join(target.dataDir, `${target.appendDirname}.backup-${stamp()}-${command}`);
  for (let n = 2; fs.existsSync(dir); n++) dir = `${dir.replace(/-\d+$/, '')}-${n}`;
  fs.mkdirSync(dir, { mode: 0o700 });
  const all = [path.basename(target.manifestPath), ...names];
  for (const name of new Set(all)) {
    const to = path.join(dir, name);
    fs.copyFileSync(path.join(target.logDir, name), to);
    fsyncFile(to);
  }
  fsyncDir(dir);
  fsyncDir(path.dirname(dir));
  note(
    `backup: ${dir} (${all.length} file${all.length === 1 ? '' : 's'}; to undo, copy them back into ${target.logDir})`,
  );
  return dir;
}

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

/** Replaces the manifest as the store does (temp, fsync, rename, fsync the folder). */
export function saveManifest(target: AofTarget, manifest: Manifest): void {
  replaceFile(target.manifestPath, formatManifest(manifest));
}
