/** A positional write, synchronous or not: `FileSystem.write` or `FileSystem.writeSync`. */
export type PositionalWrite = (
  fd: number,
  buffer: Uint8Array,
  offset: number,
  length: number,
  position: number,
) => number | Promise<number>;

/** How far a {@link writeFully} got: read it after a failure to know what to cut back. */
export interface WriteProgress {
  done: number;
}

/**
 * Writes every byte of `bytes` at `position`, as aof.c's write loop: a write may take fewer bytes
 * than asked (a signal, a nearly full disk), so it is called again for the rest. A write that
 * takes nothing makes no progress and never will: it fails as ENOSPC, the usual cause, rather
 * than loop forever. On any failure `progress.done` says how many bytes did reach the file,
 * so that the caller can cut them back (a file must never end in a torn record once the caller
 * reported the failure).
 */
export async function writeFully(
  write: PositionalWrite,
  fd: number,
  bytes: Uint8Array,
  position: number,
  progress: WriteProgress = { done: 0 },
): Promise<void> {
  while (progress.done < bytes.length) {
    const done = progress.done;
    const r = write(fd, bytes, done, bytes.length - done, position + done);
    // A synchronous write is not awaited: the append path costs one promise per batch, not per call.
    const n = typeof r === 'number' ? r : await r;
    if (!(n > 0)) throw noSpace();
    progress.done = done + n;
  }
}

/** The error of a write that wrote nothing. */
function noSpace(): NodeJS.ErrnoException {
  return Object.assign(new Error('write returned 0 bytes (disk full?)'), { code: 'ENOSPC' });
}

/**
 * `writeFully` with a synchronous write, returning when every byte is in the file (the AOF
 * store's path with the fsync on the event loop: no promise per group). Same contract: a write
 * that takes nothing fails as ENOSPC, and `progress.done` says what reached the file.
 */
export function writeFullySync(
  write: (fd: number, buffer: Uint8Array, offset: number, length: number, position: number) => number,
  fd: number,
  bytes: Uint8Array,
  position: number,
  progress: WriteProgress = { done: 0 },
): void {
  while (progress.done < bytes.length) {
    const done = progress.done;
    const n = write(fd, bytes, done, bytes.length - done, position + done);
    if (!(n > 0)) throw noSpace();
    progress.done = done + n;
  }
}
