import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Manifest, parseManifest } from '../adapters/aof/index';
import { CorruptLogError } from '../src/index';
import { invalid, usage } from './errors';

/*
 * PATH is told by what is there, never by a flag: a data folder holding `appendonlydir/` (or
 * that folder itself, or its manifest) is an AOF log; a file that starts with SQLite's header
 * is a SQLite-WAL store. Anything else is a usage error (exit 2), named as what it is.
 */

/** A file of an AOF log, in manifest order. */
export interface AofFile {
  readonly name: string;
  readonly path: string;
  readonly kind: 'base' | 'incr';
  /** Base: the last sequence number it covers. Incr: the number of its first event, when the manifest says. */
  readonly seq?: number;
}

/** An AOF log found at PATH. */
export interface AofTarget {
  readonly kind: 'aof';
  /** The data folder (the store's `dir`). */
  readonly dataDir: string;
  /** `<dataDir>/appendonlydir`. */
  readonly logDir: string;
  readonly appendDirname: string;
  readonly appendFilename: string;
  readonly manifestPath: string;
  readonly manifest: Manifest;
  /** Base then incr files, as a replay reads them. */
  readonly files: readonly AofFile[];
}

/** A SQLite-WAL store found at PATH. */
export interface SqliteTarget {
  readonly kind: 'sqlite';
  readonly file: string;
}

export type Target = AofTarget | SqliteTarget;

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

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
    if (abs.endsWith('.manifest')) return aofTarget(path.dirname(abs), path.basename(abs));
    if (isSqlite(abs)) return { kind: 'sqlite', file: abs };
    if (st.size === 0 && abs.endsWith('.db')) throw usage(`${p}: empty file, not an appendonly database`);
    throw usage(`${p}: not a log (neither a data folder with appendonlydir/ nor a SQLite .db file)`);
  }
  if (!st.isDirectory()) throw usage(`${p}: not a file or folder`);
  const inner = path.join(abs, 'appendonlydir');
  if (isDir(inner)) return aofTarget(inner, manifestName(inner, p));
  const own = manifestNameOrNull(abs);
  if (own !== null) return aofTarget(abs, own);
  throw usage(
    `${p}: no appendonlydir/ in this folder: not an AOF data folder (give the folder the store's dir points to)`,
  );
}

function aofTarget(logDir: string, manifestFile: string): AofTarget {
  const manifestPath = path.join(logDir, manifestFile);
  let manifest: Manifest;
  try {
    manifest = parseManifest(fs.readFileSync(manifestPath), manifestPath);
  } catch (err) {
    if (err instanceof CorruptLogError) throw invalid(`bad manifest: ${err.message}`);
    throw usage(`${manifestPath}: cannot read the manifest: ${(err as Error).message}`);
  }
  const files: AofFile[] = [];
  if (manifest.base) {
    files.push({
      name: manifest.base.name,
      path: path.join(logDir, manifest.base.name),
      kind: 'base',
      seq: manifest.base.lastSeq ?? 0,
    });
  }
  for (const e of manifest.incrs) {
    const f: AofFile = { name: e.name, path: path.join(logDir, e.name), kind: 'incr' };
    files.push(e.startSeq !== undefined ? { ...f, seq: e.startSeq } : f);
  }
  for (const f of files) {
    if (!fs.existsSync(f.path)) throw invalid(`${manifestPath}: names ${f.name}, which is missing`);
  }
  return {
    kind: 'aof',
    dataDir: path.dirname(logDir),
    logDir,
    appendDirname: path.basename(logDir),
    appendFilename: manifestFile.replace(/\.manifest$/, ''),
    manifestPath,
    manifest,
    files,
  };
}

function manifestName(logDir: string, p: string): string {
  const name = manifestNameOrNull(logDir);
  if (name === null)
    throw usage(`${p}: ${logDir} holds no manifest (*.manifest): not an AOF log, or its manifest was lost`);
  return name;
}

function manifestNameOrNull(dir: string): string | null {
  const names = fs.readdirSync(dir).filter((n) => n.endsWith('.manifest') && !n.startsWith('temp-'));
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

function isSqlite(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(16);
    return fs.readSync(fd, head, 0, 16, 0) === 16 && head.equals(SQLITE_HEADER);
  } finally {
    fs.closeSync(fd);
  }
}
