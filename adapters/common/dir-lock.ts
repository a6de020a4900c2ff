import * as fs from 'node:fs';
import * as net from 'node:net';
import { StoreLockedError } from '../../src/index';

/*
 * One writer per log (docs/ARCHITECTURE.md, one writer). A lock file with a PID in it is fooled by a zombie or a
 * reused PID, and a stale one must be cleaned up after a crash. So on Linux the lock is a unix
 * socket bound in the abstract namespace, named after the folder's device and inode: binding is
 * atomic, a second bind fails with EADDRINUSE (in this process or another), and the kernel drops
 * the name the moment the holder's descriptors close, SIGKILL included. A restart right after a
 * crash therefore gets the lock at once, with nothing to clean up.
 *
 * The holder answers a connection with its PID, so the error can say who holds the lock.
 * Limits: abstract sockets are per network namespace, so two containers with separate network
 * namespaces that share a volume are not kept apart. On other systems an O_EXCL lock file with
 * a PID liveness check is used instead.
 */

/** A held lock; `release()` gives it up (idempotent). */
export interface DirLock {
  /** The folder locked. */
  readonly dir: string;
  release(): Promise<void>;
}

/**
 * Takes the exclusive lock on `dir` (which must exist), or throws {@link StoreLockedError} at
 * once if another store holds it. `what` names the holder kind in the error (`AOF store`, …).
 */
export async function acquireDirLock(dir: string, what = 'store'): Promise<DirLock> {
  const st = fs.statSync(dir);
  if (process.platform === 'linux')
    return abstractSocketLock(dir, `\0appendonly-lock:${st.dev}:${st.ino}`, what);
  return pidFileLock(dir, what);
}

function abstractSocketLock(dir: string, name: string, what: string): Promise<DirLock> {
  return new Promise<DirLock>((resolve, reject) => {
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.end(String(process.pid));
    });
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EADDRINUSE') {
        reject(err);
        return;
      }
      holderPid(name).then((pid) => reject(lockedError(dir, what, pid)));
    });
    server.listen({ path: name, exclusive: true }, () => {
      server.unref();
      let released: Promise<void> | null = null;
      resolve({
        dir,
        release: () => {
          released ??= new Promise<void>((done) => server.close(() => done()));
          return released;
        },
      });
    });
  });
}

/** Asks the holder for its PID; null if it does not answer quickly. */
function holderPid(name: string): Promise<number | null> {
  return new Promise((resolve) => {
    let data = '';
    const socket = net.connect({ path: name });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, 200);
    socket.on('data', (chunk) => {
      data += chunk.toString();
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(null);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      const pid = Number.parseInt(data, 10);
      resolve(Number.isSafeInteger(pid) ? pid : null);
    });
  });
}

function lockedError(dir: string, what: string, pid: number | null): StoreLockedError {
  const holder =
    pid === null
      ? 'another process'
      : pid === process.pid
        ? `another ${what} in this process (pid ${pid})`
        : `process ${pid}`;
  return new StoreLockedError(`${dir} is locked by ${holder}: only one ${what} may write to it at a time`);
}

/** Fallback outside Linux: `<dir>/LOCK` created with O_EXCL, holding our PID; a dead holder's file is taken over. */
async function pidFileLock(dir: string, what: string): Promise<DirLock> {
  const file = `${dir}/LOCK`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      let released = false;
      return {
        dir,
        release: async () => {
          if (released) return;
          released = true;
          fs.rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
      if (Number.isSafeInteger(pid) && (pid === process.pid || alive(pid))) throw lockedError(dir, what, pid);
      fs.rmSync(file, { force: true });
    }
  }
  throw lockedError(dir, what, null);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
