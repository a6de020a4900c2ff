/**
 * The file operations the AOF store uses, injected so that tests can make any of them fail
 * (ENOSPC, EIO, short writes, a crash between two steps). Methods mirror `node:fs/promises`,
 * on raw file descriptors; errors are Node's (`code` set).
 */
export interface FileSystem {
  open(path: string, flags: string, mode?: number): Promise<number>;
  close(fd: number): Promise<void>;
  /** Writes from `buffer[offset..offset+length)` at `position` (null: the current position); returns bytes written, which may be fewer. */
  write(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
  ): Promise<number>;
  /**
   * Optional synchronous `write`: when present, the AOF store writes to the page cache on the
   * event loop, as Redis's own `write()` does (a thread-pool round trip per group costs more than
   * the copy); fsyncs stay in the background. Same contract as `write`.
   */
  writeSync?(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number;
  /** Reads into `buffer[offset..offset+length)` from `position`; returns bytes read (0 at end of file). */
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  fsync(fd: number): Promise<void>;
  fdatasync(fd: number): Promise<void>;
  /**
   * Optional synchronous `fdatasync`, used only by an AOF store with `fsyncOnEventLoop` under
   * `always` (the fsync then blocks the process, as Redis's main thread blocks on it).
   */
  fdatasyncSync?(fd: number): void;
  ftruncate(fd: number, length: number): Promise<void>;
  fstat(fd: number): Promise<{ size: number }>;
  stat(path: string): Promise<{ size: number; isDirectory(): boolean; mtimeMs: number }>;
  readFile(path: string): Promise<Buffer>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string, mode?: number): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Opens a directory and fsyncs it, so that a rename or a new file in it survives a power loss. */
  fsyncDir(path: string): Promise<void>;
}
