import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  type AofFile,
  type AofLog,
  DEFAULT_APPEND_DIRNAME,
  isManifestName,
  loadAofLog,
  MissingLogFileError,
  manifestsIn,
} from '../adapters/aof/tools/log-files';
import { hasSqliteHeader } from '../adapters/sqlite-wal/tools/detect';
import { CorruptLogError } from '../src/index';
import { invalid, usage } from './errors';

/*
 * PATH is told by what is there, never by a flag: a data folder holding the AOF log folder (or
 * that folder itself, or its manifest) is an AOF log; a file that starts with SQLite's header
 * is a SQLite-WAL store. Anything else is a usage error (exit 2), named as what it is. What a
 * log folder or a manifest looks like is the AOF adapter's to say (adapters/aof/tools).
 */

export type { AofFile };

/** An AOF log found at PATH. */
export interface AofTarget extends AofLog {
  readonly kind: 'aof';
}

/** A SQLite-WAL store found at PATH. */
export interface SqliteTarget {
  readonly kind: 'sqlite';
  readonly file: string;
}

export type Target = AofTarget | SqliteTarget;

/** Finds the log at `p`; throws a usage error (exit 2) saying what is wrong with the path. */
export function resolveTarget(p: string): Target {
  const abs = path.resolve(p);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw usage(`${p}: no such file or folder`);
  }
  if (st.isFile()) {
    if (isManifestName(abs)) return aofTarget(path.dirname(abs), path.basename(abs));
    if (hasSqliteHeader(abs)) return { kind: 'sqlite', file: abs };
    if (st.size === 0 && abs.endsWith('.db')) throw usage(`${p}: empty file, not an appendonly database`);
    throw usage(
      `${p}: not a log (neither a data folder with ${DEFAULT_APPEND_DIRNAME}/ nor a SQLite .db file)`,
    );
  }
  if (!st.isDirectory()) throw usage(`${p}: not a file or folder`);
  const inner = path.join(abs, DEFAULT_APPEND_DIRNAME);
  if (isDir(inner)) return aofTarget(inner, manifestName(inner, p));
  const own = manifestNameOrNull(abs);
  if (own !== null) return aofTarget(abs, own);
  throw usage(
    `${p}: no ${DEFAULT_APPEND_DIRNAME}/ in this folder: not an AOF data folder (give the folder the store's dir points to)`,
  );
}

function aofTarget(logDir: string, manifestFile: string): AofTarget {
  try {
    return { kind: 'aof', ...loadAofLog(logDir, manifestFile) };
  } catch (err) {
    if (err instanceof CorruptLogError) throw invalid(`bad manifest: ${err.message}`);
    if (err instanceof MissingLogFileError) throw invalid(err.message);
    throw usage(`${path.join(logDir, manifestFile)}: cannot read the manifest: ${(err as Error).message}`);
  }
}

function manifestName(logDir: string, p: string): string {
  const name = manifestNameOrNull(logDir);
  if (name === null)
    throw usage(`${p}: ${logDir} holds no manifest (*.manifest): not an AOF log, or its manifest was lost`);
  return name;
}

function manifestNameOrNull(dir: string): string | null {
  const names = manifestsIn(dir);
  if (names.length > 1) throw usage(`${dir}: several manifests (${names.join(', ')}); give the one to use`);
  return names[0] ?? null;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}
