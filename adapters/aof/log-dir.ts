import * as path from 'node:path';
import { CorruptLogError } from '../../src/index';
import { writeFully } from '../../src/kit/index';
import { formatManifest, type Manifest, type ManifestEntry, parseManifest } from './manifest';
import type { ResolvedAofOptions } from './options';

/** Prefix of the files that exist only while being written (Redis's `temp-`); removed at open. */
export const TEMP_PREFIX = 'temp-';

/**
 * The log folder: its manifest, the names of its files, and the one way the manifest changes —
 * write a temporary file, fsync it, rename it over the manifest, fsync the folder — so that a
 * crash leaves either the old manifest or the new one, never a mix.
 */
export class LogDir {
  readonly path: string;
  readonly manifestName: string;
  manifest: Manifest = { base: null, incrs: [], history: [] };

  constructor(private readonly options: ResolvedAofOptions) {
    this.path = path.join(options.dir, options.appendDirname);
    this.manifestName = `${options.appendFilename}.manifest`;
  }

  /** The full path of a file of the log. */
  file(name: string): string {
    return path.join(this.path, name);
  }

  get manifestPath(): string {
    return this.file(this.manifestName);
  }

  /** Where a compaction moves the files it replaced, with `keepHistory` (and an open, the orphans). */
  get historyPath(): string {
    return path.join(this.path, 'history');
  }

  /**
   * The incr files in history/ that hold every event before the first current incr file, in
   * order (paths), when they are all there: `<appendFilename>.1.incr.aof` up to the one before
   * it, no gap. Null when there is no such chain (no history/, or a compaction that deleted its
   * files). Whether it really ends where the current files begin is for the reader to check: a
   * log that began with a base (`appendonly convert`'s) numbers its first incr file after it.
   */
  async historyChain(): Promise<string[] | null> {
    const first = this.manifest.incrs[0];
    if (first === undefined || first.seq <= 1) return null;
    let names: string[];
    try {
      names = await this.options.fs.readdir(this.historyPath);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw err;
    }
    const prefix = `${this.options.appendFilename}.`;
    const held = new Set(
      names
        .filter((n) => n.startsWith(prefix) && /^\d+\.incr\.aof$/.test(n.slice(prefix.length)))
        .map((n) => Number.parseInt(n.slice(prefix.length), 10)),
    );
    const chain: string[] = [];
    for (let seq = 1; seq < first.seq; seq++) {
      if (!held.has(seq)) return null;
      chain.push(path.join(this.historyPath, `${prefix}${seq}.incr.aof`));
    }
    return chain;
  }

  /** Creates `dir` and the log folder if missing (mode `dirMode`). */
  async ensureFolders(): Promise<void> {
    await mkdirOnce(this.options.fs, this.options.dir, this.options.dirMode);
    await mkdirOnce(this.options.fs, this.path, this.options.dirMode);
  }

  /**
   * Creates the folders if missing and reads the manifest. Returns false when there is no log at
   * all (a new store). Log files without a manifest are an error, never an empty state.
   */
  async load(): Promise<boolean> {
    const fs = this.options.fs;
    await this.ensureFolders();
    let text: Buffer | null = null;
    try {
      text = await fs.readFile(this.manifestPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text === null) {
      const names = await fs.readdir(this.path);
      const stray = names.filter((n) => n.endsWith('.aof') && !n.startsWith(TEMP_PREFIX));
      const oldStyle = await exists(fs, path.join(this.options.dir, this.options.appendFilename));
      if (stray.length > 0 || oldStyle) {
        const what = oldStyle ? this.options.appendFilename : stray.join(', ');
        throw new CorruptLogError(
          this.manifestPath,
          0,
          `a manifest naming the log files`,
          `the manifest is missing but log files exist (${what}); restore the manifest rather than start empty`,
        );
      }
      return false;
    }
    this.manifest = parseManifest(text, this.manifestPath);
    for (const e of [...(this.manifest.base ? [this.manifest.base] : []), ...this.manifest.incrs]) {
      if (!(await exists(fs, this.file(e.name)))) {
        throw new CorruptLogError(
          this.manifestPath,
          0,
          `the file ${e.name} that the manifest names`,
          'it is missing',
        );
      }
    }
    return true;
  }

  /** Deletes files left by a write that never finished (temporary bases and manifests). */
  async removeTempFiles(): Promise<void> {
    const fs = this.options.fs;
    for (const name of await fs.readdir(this.path)) {
      if (name.startsWith(TEMP_PREFIX)) await fs.unlink(this.file(name)).catch(() => {});
    }
  }

  /**
   * Log files of our naming that the manifest does not name: what a compaction left when the
   * process died between its manifest switch and its cleanup (replaced files, or a new base or
   * an empty new incr never switched to). None holds anything the manifest's files lack, so they
   * are finished off as the compaction would have: deleted, or moved to history/.
   */
  async removeOrphans(keepHistory: boolean, info: (message: string) => void): Promise<void> {
    const fs = this.options.fs;
    const m = this.manifest;
    const named = new Set([...(m.base ? [m.base] : []), ...m.incrs, ...m.history].map((e) => e.name));
    const prefix = `${this.options.appendFilename}.`;
    const ours = /^\d+\.(base|incr)\.aof$/;
    const orphans = (await fs.readdir(this.path)).filter(
      (n) => n.startsWith(prefix) && ours.test(n.slice(prefix.length)) && !named.has(n),
    );
    if (orphans.length === 0) return;
    const history = this.historyPath;
    if (keepHistory) await mkdirOnce(fs, history, this.options.dirMode);
    for (const name of orphans) {
      if (keepHistory) await fs.rename(this.file(name), path.join(history, name));
      else await fs.unlink(this.file(name));
    }
    await fs.fsyncDir(this.path);
    info(
      `${keepHistory ? 'moved to history/' : 'removed'} log files left by an interrupted compaction: ${orphans.join(', ')}`,
    );
  }

  /** Name and seq of the next incr file. */
  nextIncr(startSeq: number): ManifestEntry {
    const last = this.manifest.incrs[this.manifest.incrs.length - 1];
    const seq = (last?.seq ?? 0) + 1;
    return { name: `${this.options.appendFilename}.${seq}.incr.aof`, seq, type: 'i', startSeq };
  }

  /** Name and seq of the next base file. */
  nextBase(lastSeq: number): ManifestEntry {
    const seq = (this.manifest.base?.seq ?? 0) + 1;
    return { name: `${this.options.appendFilename}.${seq}.base.aof`, seq, type: 'b', lastSeq };
  }

  /** Creates (or empties) a log file and returns its descriptor. */
  createFile(name: string): Promise<number> {
    return this.options.fs.open(this.file(name), 'w', this.options.fileMode);
  }

  /** Replaces the manifest atomically and durably; `this.manifest` changes only once it is on disk. */
  async persist(next: Manifest): Promise<void> {
    const fs = this.options.fs;
    const tmp = this.file(TEMP_PREFIX + this.manifestName);
    const bytes = Buffer.from(formatManifest(next), 'utf8');
    const fd = await fs.open(tmp, 'w', this.options.fileMode);
    try {
      try {
        await writeFully(fs.write.bind(fs), fd, bytes, 0);
        await fs.fsync(fd);
      } finally {
        await fs.close(fd);
      }
      await fs.rename(tmp, this.manifestPath);
    } catch (err) {
      await fs.unlink(tmp).catch(() => {});
      throw err;
    }
    // Once renamed, the new manifest is the one a restart reads, even if this fsync fails.
    this.manifest = next;
    await fs.fsyncDir(this.path);
  }
}

async function mkdirOnce(fs: ResolvedAofOptions['fs'], dir: string, mode: number): Promise<void> {
  try {
    await fs.mkdir(dir, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

async function exists(fs: ResolvedAofOptions['fs'], file: string): Promise<boolean> {
  try {
    await fs.stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
