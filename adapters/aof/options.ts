import type { FsyncPolicy } from '../../src/index';
import { OptionReader, SHARED_OPTIONS } from '../../src/kit/index';
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
   * Under `always`, where each group's fdatasync runs (other policies ignore it):
   * - `'adaptive'` (the default when `fs` has `fdatasyncSync`): on the event loop while groups
   *   come alone (one command in flight: 4 lone batches in a row) and the disk's fsyncs are
   *   fast, as a synchronous write + fdatasync loop runs, with no thread-pool round trip; in
   *   libuv's thread pool, with group commit, when groups pile up or as soon as one fsync is
   *   slow (over 1 ms), so that a slow disk blocks the process for one fsync at most, then
   *   once per probation: it goes back to the loop after a run of fast fsyncs in the pool.
   * - `true`: always on the event loop, blocking the process until the disk has the group, as
   *   Redis's main thread does. For a process that only serves commands on few cores: the fsync
   *   competes with no other work and costs less CPU per command (examples/kv-server uses it).
   * - `false` (the default when `fs` has no `fdatasyncSync`): always in the thread pool.
   *
   * `true` and `'adaptive'` need `fs.fdatasyncSync` whatever the policy (checked at
   * construction: the same options may open the store again under `always`).
   */
  readonly fsyncOnEventLoop?: boolean | 'adaptive';
  /** Cut an incomplete last record with a warning (default true); false refuses to load instead. */
  readonly loadTruncated?: boolean;
  /** Write `#TS:<unix seconds>` annotations (default false), as Redis's `aof-timestamp-enabled`. */
  readonly aofTimestamps?: boolean;
  /** Move the files a compaction replaces to `<appendDirname>/history/` instead of deleting them (default false). */
  readonly keepHistory?: boolean;
  /**
   * A consumer further behind than this many events when a compaction runs is marked stale: its
   * events are no longer kept for it, and it must be reset (`app.resetConsumer`). Default 1,000,000.
   */
  readonly maxConsumerLag?: number;
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
  readonly fsyncOnEventLoop: boolean | 'adaptive';
  readonly loadTruncated: boolean;
  readonly aofTimestamps: boolean;
  readonly keepHistory: boolean;
  readonly maxConsumerLag: number;
  readonly fs: FileSystem;
  readonly fileMode: number;
  readonly dirMode: number;
}

const KNOWN: readonly string[] = [
  'dir',
  ...SHARED_OPTIONS,
  'appendFilename',
  'appendDirname',
  'fsyncOnEventLoop',
  'loadTruncated',
  'aofTimestamps',
  'fs',
  'fileMode',
  'dirMode',
];

/** A bare name of safe characters: no separator, not `.` or `..`, nothing the space-separated manifest would need to quote. */
const BARE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._+@=,-]{1,200}$/;

/** Validates `options` and fills in the defaults; throws `ConfigError` naming the bad option. */
export function resolveAofOptions(options: AofStoreOptions): ResolvedAofOptions {
  const o = new OptionReader('AofStore', options, KNOWN, '{ dir }');
  const dir = o.path('dir');
  const fs = fileSystem(o);
  const fsyncOnEventLoop = fsyncPlacement(o, typeof fs.fdatasyncSync === 'function');
  return {
    dir,
    ...o.shared(),
    appendFilename: bareName(o, 'appendFilename', 'appendonly.aof'),
    appendDirname: bareName(o, 'appendDirname', 'appendonlydir'),
    fsyncOnEventLoop,
    loadTruncated: o.boolean('loadTruncated', true),
    aofTimestamps: o.boolean('aofTimestamps', false),
    fs,
    fileMode: mode(o, 'fileMode', 0o600),
    dirMode: mode(o, 'dirMode', 0o700),
  };
}

function fsyncPlacement(o: OptionReader, hasSync: boolean): boolean | 'adaptive' {
  const value = o.raw('fsyncOnEventLoop');
  if (value === undefined) return hasSync ? 'adaptive' : false;
  if (value !== true && value !== false && value !== 'adaptive')
    throw o.error(`fsyncOnEventLoop must be true, false or 'adaptive'; got ${JSON.stringify(value)}`);
  if (value !== false && !hasSync) throw o.error('fsyncOnEventLoop needs an fs with fdatasyncSync');
  return value;
}

function bareName(o: OptionReader, option: string, fallback: string): string {
  const value = o.raw(option);
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !BARE_NAME.test(value))
    throw o.error(
      `${option} must be a bare file name (no path, spaces or quotes); got ${JSON.stringify(value)}`,
    );
  return value;
}

function mode(o: OptionReader, option: string, fallback: number): number {
  const value = o.raw(option);
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0o7777)
    throw o.error(`${option} must be a file mode such as 0o600; got ${JSON.stringify(value)}`);
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

function fileSystem(o: OptionReader): FileSystem {
  const value = o.raw('fs');
  if (value === undefined) return nodeFileSystem;
  const fs = value as Record<string, unknown> | null;
  const all = [...FS_METHODS, 'readdir', 'mkdir', 'rename', 'unlink', 'fsyncDir'];
  const missing =
    fs === null || typeof fs !== 'object' ? all : all.filter((m) => typeof fs[m] !== 'function');
  if (missing.length > 0) throw o.error(`fs must implement FileSystem; missing ${missing.join(', ')}`);
  return value as FileSystem;
}
