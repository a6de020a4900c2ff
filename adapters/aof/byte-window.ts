import { CorruptLogError } from '../../src/index';
import type { FileSystem } from './file-system';

/*
 * One AOF file seen through a window of its bytes, read in chunks: the only place that refills a
 * buffer from a file, for the store's reader, the redis-check-aof emulation and the CLI's walk.
 *
 * Invariants:
 * - `buf[0..fill)` holds the file's bytes from offset `base`; a buffer offset `i` is the file
 *   offset `base + i`. Callers keep buffer offsets, and shift them by what `refill` returns.
 * - The size is taken once, at open: a file that shrinks while it is read is an error, never a
 *   shorter file (a concurrent cut must not pass for a torn tail the reader may repair).
 * - Memory is one chunk, or the longest item a caller asked to keep whole (a huge MULTI group),
 *   never more than the file holds.
 */
export class ByteWindow {
  /** File offset of `buf[0]`. */
  base = 0;
  /** Bytes of `buf` that hold file data. */
  fill = 0;

  private constructor(
    readonly fs: FileSystem,
    readonly fd: number,
    /** The name shown in errors. */
    readonly name: string,
    /** The file's size when it was opened. */
    readonly size: number,
    public buf: Buffer,
    private readonly onRead: ((bytes: number) => void) | undefined,
  ) {}

  /** Opens `path` for reading; `onRead` is told of every read, for progress reports. */
  static async open(
    fs: FileSystem,
    path: string,
    name: string,
    chunkSize = 1024 * 1024,
    onRead?: (bytes: number) => void,
  ): Promise<ByteWindow> {
    const fd = await fs.open(path, 'r');
    try {
      const size = (await fs.fstat(fd)).size;
      return new ByteWindow(fs, fd, name, size, Buffer.allocUnsafe(chunkSize), onRead);
    } catch (err) {
      await fs.close(fd);
      throw err;
    }
  }

  /** Every byte of the file is in the window, or was before it. */
  get atEnd(): boolean {
    return this.base + this.fill >= this.size;
  }

  /**
   * Reads on, keeping `buf[keep..fill)` (moved to the front, and the buffer grown, when there is
   * no room for `needUpTo - keep` bytes); returns how far buffer offsets moved (subtract it).
   * Requires `needUpTo > fill` (what a scanner asking for more bytes gives), so that one byte at
   * least fits after the move. One read per call, never past the size taken at open: a short
   * read is just a smaller step; a read of nothing before that size means the file shrank.
   */
  async refill(keep: number, needUpTo: number): Promise<number> {
    let shift = 0;
    // Never more room than the rest of the file: a damaged length (`$999999999999`) costs nothing.
    const need = Math.min(needUpTo, this.size - this.base) - keep;
    if (keep > 0 || need > this.buf.length) {
      const target =
        need > this.buf.length ? Buffer.allocUnsafe(Math.max(need, this.buf.length * 2)) : this.buf;
      this.buf.copy(target, 0, keep, this.fill);
      this.buf = target;
      this.base += keep;
      this.fill -= keep;
      shift = keep;
    }
    const room = Math.min(this.buf.length - this.fill, this.size - this.base - this.fill);
    const n = room > 0 ? await this.fs.read(this.fd, this.buf, this.fill, room, this.base + this.fill) : 0;
    if (n === 0) {
      throw new CorruptLogError(
        this.name,
        this.base + this.fill,
        `${this.size - this.base - this.fill} more bytes`,
        'the file shrank while it was read',
      );
    }
    this.fill += n;
    this.onRead?.(n);
    return shift;
  }

  close(): Promise<void> {
    return this.fs.close(this.fd);
  }
}
