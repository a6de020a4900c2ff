import type { FileSystem } from 'appendonly/adapters/aof';

/**
 * A read-only FileSystem over Buffers, so that the property tests can feed tens of thousands of
 * logs to the real reader without touching the disk. It counts what the reader asks for: every
 * byte of a file is read at most once, so the bytes read bound the work of a read.
 */
export class MemoryFileSystem implements FileSystem {
  /** Bytes handed to the reader, over all files. */
  bytesRead = 0;
  /** Calls of `read`. */
  reads = 0;
  private readonly fds = new Map<number, Buffer>();
  private nextFd = 3;

  constructor(private readonly files: ReadonlyMap<string, Buffer>) {}

  async open(p: string, flags: string): Promise<number> {
    const data = this.files.get(p);
    if (data === undefined || flags !== 'r')
      throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
    const fd = this.nextFd++;
    this.fds.set(fd, data);
    return fd;
  }
  async close(fd: number): Promise<void> {
    this.fds.delete(fd);
  }
  async read(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number,
  ): Promise<number> {
    const data = this.file(fd);
    const n = Math.max(0, Math.min(length, data.length - position));
    data.copy(buffer, offset, position, position + n);
    this.bytesRead += n;
    this.reads++;
    return n;
  }
  async fstat(fd: number): Promise<{ size: number }> {
    return { size: this.file(fd).length };
  }
  private file(fd: number): Buffer {
    const data = this.fds.get(fd);
    if (data === undefined) throw Object.assign(new Error(`EBADF: ${fd}`), { code: 'EBADF' });
    return data;
  }
  write(): Promise<number> {
    return refuse('write');
  }
  fsync(): Promise<void> {
    return refuse('fsync');
  }
  fdatasync(): Promise<void> {
    return refuse('fdatasync');
  }
  ftruncate(): Promise<void> {
    return refuse('ftruncate');
  }
  stat(): Promise<{ size: number; isDirectory(): boolean; mtimeMs: number }> {
    return refuse('stat');
  }
  readFile(): Promise<Buffer> {
    return refuse('readFile');
  }
  readdir(): Promise<string[]> {
    return refuse('readdir');
  }
  mkdir(): Promise<void> {
    return refuse('mkdir');
  }
  rename(): Promise<void> {
    return refuse('rename');
  }
  unlink(): Promise<void> {
    return refuse('unlink');
  }
  fsyncDir(): Promise<void> {
    return refuse('fsyncDir');
  }
}

function refuse(op: string): Promise<never> {
  return Promise.reject(new Error(`MemoryFileSystem is read-only: ${op}`));
}
