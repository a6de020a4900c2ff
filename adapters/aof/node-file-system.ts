import * as fs from 'node:fs';
import type { FileSystem } from './file-system';

/*
 * The real FileSystem, on Node's callback API rather than `fs/promises`: the callback API costs no
 * FileHandle object and one promise per call, which matters on the append path (one write and
 * one fdatasync per tick under `always`). Every asynchronous call goes to libuv's thread pool;
 * the two synchronous ones run on the event loop: `writeSync` (a copy into the page cache) and
 * `fdatasyncSync`, which only a store with `fsyncOnEventLoop` calls.
 */

function call<T>(fn: (cb: (err: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((err, value) => (err ? reject(err) : resolve(value)));
  });
}

function done(fn: (cb: (err: NodeJS.ErrnoException | null) => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    fn((err) => (err ? reject(err) : resolve()));
  });
}

/** The FileSystem of the machine, through `node:fs`, with the synchronous write the append path prefers (and a synchronous fdatasync for `fsyncOnEventLoop`). */
export const nodeFileSystem: FileSystem & Required<Pick<FileSystem, 'writeSync' | 'fdatasyncSync'>> = {
  open: (path, flags, mode) => call<number>((cb) => fs.open(path, flags, mode, cb)),
  close: (fd) => done((cb) => fs.close(fd, cb)),
  write: (fd, buffer, offset, length, position) =>
    call<number>((cb) => fs.write(fd, buffer, offset, length, position, (err, written) => cb(err, written))),
  writeSync: (fd, buffer, offset, length, position) => fs.writeSync(fd, buffer, offset, length, position),
  read: (fd, buffer, offset, length, position) =>
    call<number>((cb) =>
      fs.read(fd, buffer, offset, length, position, (err, bytesRead) => cb(err, bytesRead)),
    ),
  fsync: (fd) => done((cb) => fs.fsync(fd, cb)),
  fdatasync: (fd) => done((cb) => fs.fdatasync(fd, cb)),
  fdatasyncSync: (fd) => fs.fdatasyncSync(fd),
  ftruncate: (fd, length) => done((cb) => fs.ftruncate(fd, length, cb)),
  fstat: (fd) => call<fs.Stats>((cb) => fs.fstat(fd, cb)),
  stat: (path) => call<fs.Stats>((cb) => fs.stat(path, cb)),
  readFile: (path) => call<Buffer>((cb) => fs.readFile(path, cb)),
  readdir: (path) => call<string[]>((cb) => fs.readdir(path, cb)),
  mkdir: (path, mode) => done((cb) => fs.mkdir(path, { mode }, (err) => cb(err))),
  rename: (from, to) => done((cb) => fs.rename(from, to, cb)),
  unlink: (path) => done((cb) => fs.unlink(path, cb)),
  fsyncDir: async (path) => {
    const fd = await call<number>((cb) => fs.open(path, 'r', cb));
    try {
      await done((cb) => fs.fsync(fd, cb));
    } finally {
      await done((cb) => fs.close(fd, cb));
    }
  },
};
