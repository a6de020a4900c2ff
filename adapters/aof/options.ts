import { ConfigError, type FsyncPolicy, parseFsyncPolicy } from '../../src/index';
import type { FileSystem } from './file-system';
import { nodeFileSystem } from './node-file-system';

/**
 * Options of {@link AofStore}: Redis's AOF settings in camelCase, with Redis's defaults, plus
 * what an embedded store needs (`dir`, `fs`, file modes, `keepHistory`).
 */
export interface AofStoreOptions {
  /** The data folder (Redis's `dir`). The log lives in `<dir>/<appendDirname>/`. Required. */
  readonly dir: string;
  /** `always` | `everysec` (default) | `no`. */
  readonly appendfsync?: FsyncPolicy;
  /** Base name of the log files (default `appendonly.aof`). A bare file name. */
  readonly appendFilename?: string;
  /** Folder of the log inside `dir` (default `appendonlydir`). A bare folder name. */
  readonly appendDirname?: string;
  /** Compact when the log has grown by this many percent since the last compaction; 0 disables (default 100). */
  readonly autoRewritePercentage?: number;
  /** No automatic compaction below this log size in bytes (default 64 MiB). */
  readonly autoRewriteMinSize?: number;
  /** Skip fsync while a compaction runs (default false), as Redis's `no-appendfsync-on-rewrite`. */
  readonly noAppendfsyncOnRewrite?: boolean;
  /**
   * Under `always`, run each group's fdatasync on the event loop, blocking the process until the
   * disk has the group, as Redis's main thread does (default false: in libuv's thread pool, so
   * that the process keeps serving while the disk works). For a process that only serves
   * commands on few cores: the fsync then competes with no other work, and costs less CPU per
   * command (examples/kv-server uses it). Other policies ignore it, but it needs
   * `fs.fdatasyncSync` whatever the policy (checked at construction: the same options may open
   * the store again under `always`).
   */
  readonly fsyncOnEventLoop?: boolean;
  /** Cut an incomplete last record with a warning (default true); false refuses to load instead. */
  readonly loadTruncated?: boolean;
  /** Write `#TS:<unix seconds>` annotations (default false), as Redis's `aof-timestamp-enabled`. */
  readonly aofTimestamps?: boolean;
  /** Move the files a compaction replaces to `<appendDirname>/history/` instead of deleting them (default false). */
  readonly keepHistory?: boolean;
  /** The file operations (default: the real file system). Tests inject faults through it. */
  readonly fs?: FileSystem;
  /** Mode of the files created (default 0o600). */
  readonly fileMode?: number;
  /** Mode of the folders created (default 0o700). */
  readonly dirMode?: number;
}

/** {@link AofStoreOptions} with every default filled in. */
export interface ResolvedAofOptions {
  readonly dir: string;
  readonly appendfsync: FsyncPolicy;
  readonly appendFilename: string;
  readonly appendDirname: string;
  readonly autoRewritePercentage: number;
  readonly autoRewriteMinSize: number;
  readonly noAppendfsyncOnRewrite: boolean;
  readonly fsyncOnEventLoop: boolean;
  readonly loadTruncated: boolean;
  readonly aofTimestamps: boolean;
  readonly keepHistory: boolean;
  readonly fs: FileSystem;
  readonly fileMode: number;
  readonly dirMode: number;
}

const KNOWN = new Set<string>([
  'dir',
  'appendfsync',
  'appendFilename',
  'appendDirname',
  'autoRewritePercentage',
  'autoRewriteMinSize',
  'noAppendfsyncOnRewrite',
  'fsyncOnEventLoop',
  'loadTruncated',
  'aofTimestamps',
  'keepHistory',
  'fs',
  'fileMode',
  'dirMode',
]);

/** A bare name of safe characters: no separator, not `.` or `..`, nothing the space-separated manifest would need to quote. */
const BARE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._+@=,-]{1,200}$/;

/** Validates `options` and fills in the defaults; throws {@link ConfigError} naming the bad option. */
export function resolveAofOptions(options: AofStoreOptions): ResolvedAofOptions {
  if (typeof options !== 'object' || options === null)
    throw new ConfigError('AofStore needs an options object with at least { dir }');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) {
      throw new ConfigError(
        `AofStore: unknown option ${JSON.stringify(key)}; known options: ${[...KNOWN].join(', ')}`,
      );
    }
  }
  const o = options as unknown as Record<string, unknown>;
  if (typeof o.dir !== 'string' || o.dir.length === 0)
    throw new ConfigError('AofStore: dir must be a non-empty string');
  const fs = fileSystem(o.fs);
  const fsyncOnEventLoop = boolean(o.fsyncOnEventLoop, 'fsyncOnEventLoop', false);
  if (fsyncOnEventLoop && typeof fs.fdatasyncSync !== 'function')
    throw new ConfigError('AofStore: fsyncOnEventLoop needs an fs with fdatasyncSync');
  return {
    dir: o.dir,
    appendfsync:
      o.appendfsync === undefined ? 'everysec' : parseFsyncPolicy(o.appendfsync, 'AofStore: appendfsync'),
    appendFilename: bareName(o.appendFilename, 'appendFilename', 'appendonly.aof'),
    appendDirname: bareName(o.appendDirname, 'appendDirname', 'appendonlydir'),
    autoRewritePercentage: integer(o.autoRewritePercentage, 'autoRewritePercentage', 100, 0),
    autoRewriteMinSize: integer(o.autoRewriteMinSize, 'autoRewriteMinSize', 64 * 1024 * 1024, 0),
    noAppendfsyncOnRewrite: boolean(o.noAppendfsyncOnRewrite, 'noAppendfsyncOnRewrite', false),
    fsyncOnEventLoop,
    loadTruncated: boolean(o.loadTruncated, 'loadTruncated', true),
    aofTimestamps: boolean(o.aofTimestamps, 'aofTimestamps', false),
    keepHistory: boolean(o.keepHistory, 'keepHistory', false),
    fs,
    fileMode: mode(o.fileMode, 'fileMode', 0o600),
    dirMode: mode(o.dirMode, 'dirMode', 0o700),
  };
}

function bareName(value: unknown, option: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !BARE_NAME.test(value)) {
    throw new ConfigError(
      `AofStore: ${option} must be a bare file name (no path, spaces or quotes); got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function integer(value: unknown, option: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new ConfigError(`AofStore: ${option} must be an integer ≥ ${min}; got ${JSON.stringify(value)}`);
  }
  return value;
}

function boolean(value: unknown, option: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean')
    throw new ConfigError(`AofStore: ${option} must be true or false; got ${JSON.stringify(value)}`);
  return value;
}

function mode(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0o7777) {
    throw new ConfigError(
      `AofStore: ${option} must be a file mode such as 0o600; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

const FS_METHODS = [
  'open',
  'close',
  'write',
  'read',
  'fsync',
  'fdatasync',
  'ftruncate',
  'fstat',
  'stat',
  'readFile',
] as const;

function fileSystem(value: unknown): FileSystem {
  if (value === undefined) return nodeFileSystem;
  const fs = value as Record<string, unknown> | null;
  const all = [...FS_METHODS, 'readdir', 'mkdir', 'rename', 'unlink', 'fsyncDir'];
  const missing =
    fs === null || typeof fs !== 'object' ? all : all.filter((m) => typeof fs[m] !== 'function');
  if (missing.length > 0)
    throw new ConfigError(`AofStore: fs must implement FileSystem; missing ${missing.join(', ')}`);
  return value as FileSystem;
}
