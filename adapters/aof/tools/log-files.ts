import * as fs from 'node:fs';
import * as path from 'node:path';
import { LogDir, TEMP_PREFIX } from '../log-dir';
import { formatManifest, type Manifest, parseManifest } from '../manifest';
import { resolveAofOptions } from '../options';
import { replaceFile } from './durable';

/*
 * An AOF log as the tools see it from outside a store: the folder, its manifest, and the files
 * the manifest names, base first, in the order a replay reads them. Every name comes from the
 * store's own code (LogDir and the option defaults), so a tool finds and writes exactly the
 * files an AofStore would, and a change of layout there is a change here.
 */

/** A file of an AOF log, in manifest order. */
export interface AofFile {
  readonly name: string;
  readonly path: string;
  readonly kind: 'base' | 'incr';
  /** Base: the last sequence number it covers. Incr: the number of its first event, when the manifest says. */
  readonly seq?: number;
  /** Base: the projections version the manifest records for it (absent: unversioned). */
  readonly projectionsVersion?: string;
}

/** An AOF log found on disk. */
export interface AofLog {
  /** The data folder (the store's `dir`). */
  readonly dataDir: string;
  /** `<dataDir>/<appendDirname>`. */
  readonly logDir: string;
  readonly appendDirname: string;
  readonly appendFilename: string;
  readonly manifestPath: string;
  readonly manifest: Manifest;
  /** Base then incr files, as a replay reads them. */
  readonly files: readonly AofFile[];
}

const DEFAULTS = resolveAofOptions({ dir: '.' });

/** The log folder inside a data folder when the store runs with its defaults (`appendonlydir`). */
export const DEFAULT_APPEND_DIRNAME = DEFAULTS.appendDirname;

/** The layout of a log folder: the store's LogDir for `dataDir` and these names. */
export function logDirFor(dataDir: string, appendDirname?: string, appendFilename?: string): LogDir {
  return new LogDir(resolveAofOptions({ dir: dataDir, appendDirname, appendFilename }));
}

/** The manifest's name is `<appendFilename><MANIFEST_SUFFIX>`, as LogDir makes it. */
const MANIFEST_SUFFIX = logDirFor('.', undefined, 'x').manifestName.slice(1);

/** True for a manifest's name (`*.manifest`). */
export function isManifestName(name: string): boolean {
  return name.endsWith(MANIFEST_SUFFIX);
}

/** The manifests in a folder, but the temporary one a store writes before its rename. */
export function manifestsIn(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => isManifestName(n) && !n.startsWith(TEMP_PREFIX));
}

/** A file the manifest names is not there. */
export class MissingLogFileError extends Error {
  constructor(manifestPath: string, name: string) {
    super(`${manifestPath}: names ${name}, which is missing`);
  }
}

/**
 * Reads the manifest `manifestName` of the log folder `logDir`. Throws what reading the file
 * throws, CorruptLogError for a manifest that does not parse, MissingLogFileError when a file it
 * names is not there.
 */
export function loadAofLog(logDir: string, manifestName: string): AofLog {
  // Plain path joins, not LogDir: a folder or manifest of any name can be looked at, even one the
  // store's options would refuse to be configured with.
  const manifestPath = path.join(logDir, manifestName);
  const manifest = parseManifest(fs.readFileSync(manifestPath), manifestPath);
  const files: AofFile[] = [];
  if (manifest.base) {
    files.push({
      name: manifest.base.name,
      path: path.join(logDir, manifest.base.name),
      kind: 'base',
      seq: manifest.base.lastSeq ?? 0,
      ...(manifest.base.projectionsVersion !== undefined
        ? { projectionsVersion: manifest.base.projectionsVersion }
        : {}),
    });
  }
  for (const e of manifest.incrs) {
    const f: AofFile = { name: e.name, path: path.join(logDir, e.name), kind: 'incr' };
    files.push(e.startSeq !== undefined ? { ...f, seq: e.startSeq } : f);
  }
  for (const f of files) if (!fs.existsSync(f.path)) throw new MissingLogFileError(manifestPath, f.name);
  return {
    dataDir: path.dirname(logDir),
    logDir,
    appendDirname: path.basename(logDir),
    appendFilename: isManifestName(manifestName)
      ? manifestName.slice(0, -MANIFEST_SUFFIX.length)
      : manifestName,
    manifestPath,
    manifest,
    files,
  };
}

/** Replaces the manifest as the store does: temp file, fsync, rename, fsync of the folder. */
export function saveManifest(log: AofLog, manifest: Manifest): void {
  replaceFile(log.manifestPath, formatManifest(manifest));
}
