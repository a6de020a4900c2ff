import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
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
 * namespaces that share a volume are not kept apart. On other systems a lock file holding the
 * holder's PID is used instead (pidFileLock below).
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
 * `kind` is for tests: `'pid-file'` takes the fallback of other systems on Linux too.
 */
export async function acquireDirLock(
  dir: string,
  what = 'store',
  kind: 'auto' | 'pid-file' = 'auto',
): Promise<DirLock> {
  const st = fs.statSync(dir);
  if (process.platform === 'linux' && kind === 'auto')
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

/*
 * Fallback outside Linux: `<dir>/LOCK` holds the holder's PID; a file whose PID is dead is
 * taken over. Why it admits one holder:
 *
 * - LOCK is never created empty: our PID goes to a private temp file first, which link() then
 *   names LOCK. link() fails with EEXIST when LOCK exists, so of the processes that find no
 *   LOCK exactly one creates it, and a reader never sees a half-written PID.
 * - LOCK is never deleted by anyone but its holder (release). A dead holder's file is replaced
 *   in one step, rename(temp, LOCK), under a claim on that very file: `LOCK.takeover-<ino>`,
 *   <ino> being the inode of the LOCK file found dead, created by link() as well (so one
 *   claimer per inode). Holding the claim, the taker reads LOCK again: only if it is still that
 *   inode, with a dead PID, does it rename over it. While the claim is held that inode cannot
 *   change under the taker: a rename over it needs the same claim, a creation needs LOCK to be
 *   absent, and its holder is dead so it does not release. A taker that read the dead LOCK
 *   before someone else replaced it finds a different inode once it holds the claim, and backs
 *   off. Two processes that both find a dead holder therefore cannot both take the lock (the
 *   old code removed the file and created a new one: the second remover removed the first
 *   one's fresh lock).
 * - A claim left by a taker that died in between is itself a file with a dead PID, and is
 *   taken over by the same rule one level down (`LOCK.takeover-<ino>.takeover-<ino2>`).
 *
 * Inode numbers are compared as bigints (Windows file ids do not fit a double). A PID reused by
 * an unrelated live process makes the lock look held: that errs on the safe side.
 */
async function pidFileLock(dir: string, what: string): Promise<DirLock> {
  const file = path.join(dir, 'LOCK');
  const mine = pidTemp(dir);
  // Linked or renamed to LOCK, it keeps its inode: that is how release knows LOCK is still ours.
  const ino = fs.statSync(mine, { bigint: true }).ino;
  try {
    for (let attempt = 0; attempt < 50; attempt++) {
      if (tryLink(mine, file) || takeOver(file, mine)) {
        let released = false;
        return {
          dir,
          release: async () => {
            if (released) return;
            released = true;
            // Only our own file: LOCK is ours until we remove it, unless it was (wrongly) taken over.
            if (holderOf(file)?.ino === ino) fs.rmSync(file, { force: true });
          },
        };
      }
      const holder = holderOf(file);
      if (holder !== null && (holder.pid === process.pid || alive(holder.pid)))
        throw lockedError(dir, what, holder.pid);
      // Gone, or dead and being taken over by another process right now: look again shortly.
      await new Promise((r) => setTimeout(r, 2 + Math.random() * 8));
    }
    throw lockedError(dir, what, null);
  } finally {
    fs.rmSync(mine, { force: true });
  }
}

/** A new private file in `dir` holding our PID, to be linked or renamed into place. */
function pidTemp(dir: string): string {
  const name = path.join(dir, `LOCK.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  fs.writeFileSync(name, String(process.pid), { mode: 0o600, flag: 'wx' });
  return name;
}

/** link(from, to): true if `to` was created, false if it exists. */
function tryLink(from: string, to: string): boolean {
  try {
    fs.linkSync(from, to);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** The inode and PID of a lock file, or null if it does not exist. A file that names no PID counts as dead (PID 0 is never alive here). */
function holderOf(file: string): { ino: bigint; pid: number } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const ino = fs.fstatSync(fd, { bigint: true }).ino;
    const buf = Buffer.alloc(32);
    const n = fs.readSync(fd, buf, 0, buf.length, 0);
    const pid = Number.parseInt(buf.toString('latin1', 0, n), 10);
    return { ino, pid: Number.isSafeInteger(pid) && pid > 0 ? pid : 0 };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replaces `file` by `mine` (rename) if its holder is dead, under the claim described above;
 * true if it did. False when the file is held, gone, or another process is taking it over.
 */
function takeOver(file: string, mine: string): boolean {
  const seen = holderOf(file);
  if (seen === null || seen.pid === process.pid || alive(seen.pid)) return false;
  const claim = `${file}.takeover-${seen.ino}`;
  const claimTemp = pidTemp(path.dirname(file));
  let claimed = false;
  try {
    claimed = tryLink(claimTemp, claim) || takeOver(claim, claimTemp);
    if (!claimed) return false;
    const now = holderOf(file);
    if (now === null || now.ino !== seen.ino || now.pid === process.pid || alive(now.pid)) return false;
    fs.renameSync(mine, file);
    return true;
  } finally {
    if (claimed) fs.rmSync(claim, { force: true });
    fs.rmSync(claimTemp, { force: true });
  }
}

function alive(pid: number): boolean {
  // kill(0) would signal our process group: a file that names no PID has no live holder.
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
