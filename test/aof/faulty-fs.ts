import * as path from 'node:path';
import type { FileSystem } from 'appendonly/adapters/aof';
import { nodeFileSystem } from 'appendonly/adapters/aof';

type Op = keyof FileSystem;

/** A fault to inject: the next call of `op` (on a path matching `match`, if given) fails, or writes short. */
export interface Fault {
  readonly op: Op;
  readonly code: string;
  readonly match?: RegExp;
  /** For `write`: write this many bytes for real and return them (a short write); a non-empty `code` then fails the next write. */
  readonly short?: number;
  /** How many calls fail (default 1; Infinity: until cleared). */
  times?: number;
}

const MUTATING: ReadonlySet<Op> = new Set<Op>([
  'write',
  'fsync',
  'fdatasync',
  'ftruncate',
  'mkdir',
  'rename',
  'unlink',
  'fsyncDir',
  'open',
]);

/**
 * The real file system with a journal of every call (`write:<file>:<bytes>`, `fdatasync:<file>`,
 * …) and injectable faults. `freezeAfter(n)` makes every change to the disk after the n-th
 * mutating call fail with EIO: the disk is left as a crash at that moment would leave it.
 */
export class FaultyFileSystem implements FileSystem {
  readonly journal: string[] = [];
  private readonly names = new Map<number, string>();
  private faults: Fault[] = [];
  private mutations = 0;
  private frozenAfter = Number.POSITIVE_INFINITY;

  /** With `syncWrites: false` it has no `writeSync`, so the store takes its asynchronous write path. */
  constructor(options: { syncWrites?: boolean } = {}) {
    if (options.syncWrites === false) Object.defineProperty(this, 'writeSync', { value: undefined });
  }

  /** Adds a fault. */
  inject(fault: Fault): void {
    this.faults.push({ times: 1, ...fault });
  }

  private pauses: { op: Op; match: RegExp; gate: Promise<void> }[] = [];

  /** The next call of `op` on a matching path waits until the returned function is called. */
  pauseNext(op: Op, match: RegExp): () => void {
    if (op === 'fdatasyncSync' || op === 'writeSync') throw new Error(`${op} is synchronous: it cannot wait`);
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    this.pauses.push({ op, match, gate });
    return open;
  }

  private async gate(op: Op, target: string): Promise<void> {
    const i = this.pauses.findIndex((p) => p.op === op && p.match.test(target));
    if (i < 0) return;
    const [pause] = this.pauses.splice(i, 1);
    await pause.gate;
  }

  /** Removes every fault (the disk is healthy again). */
  heal(): void {
    this.faults = [];
    this.frozenAfter = Number.POSITIVE_INFINITY;
  }

  /** Every mutating call after the next `n` fails with EIO. */
  freezeAfter(n: number): void {
    this.frozenAfter = this.mutations + n;
  }

  /** Mutating calls so far. */
  get mutationCount(): number {
    return this.mutations;
  }

  private name(fd: number): string {
    return this.names.get(fd) ?? `fd${fd}`;
  }

  private check(op: Op, target: string, flags?: string): Fault | null {
    const mutating = MUTATING.has(op) && !(op === 'open' && flags === 'r');
    if (mutating) {
      this.mutations++;
      if (this.mutations > this.frozenAfter) throw errno('EIO', `${op} ${target} (frozen)`);
    }
    const i = this.faults.findIndex((f) => f.op === op && (f.match === undefined || f.match.test(target)));
    if (i < 0) return null;
    const fault = this.faults[i];
    if (fault.short !== undefined) {
      this.faults.splice(i, 1);
      return fault;
    }
    fault.times = (fault.times ?? 1) - 1;
    if (fault.times <= 0) this.faults.splice(i, 1);
    throw errno(fault.code, `${op} ${target}`);
  }

  async open(p: string, flags: string, mode?: number): Promise<number> {
    this.check('open', path.basename(p), flags);
    const fd = await nodeFileSystem.open(p, flags, mode);
    this.names.set(fd, path.basename(p));
    return fd;
  }
  async close(fd: number): Promise<void> {
    this.names.delete(fd);
    await nodeFileSystem.close(fd);
  }
  async write(
    fd: number,
    buffer: Uint8Array,
    offset: number,
    length: number,
    position: number | null,
  ): Promise<number> {
    const fault = this.check('write', this.name(fd));
    if (fault?.short !== undefined) {
      const n = await nodeFileSystem.write(fd, buffer, offset, Math.min(fault.short, length), position);
      this.journal.push(`write:${this.name(fd)}:${n}(short)`);
      if (fault.code !== '') this.inject({ op: 'write', code: fault.code, match: fault.match });
      return n;
    }
    const n = await nodeFileSystem.write(fd, buffer, offset, length, position);
    this.journal.push(`write:${this.name(fd)}:${n}`);
    return n;
  }
  /** The synchronous write the append path prefers; faults apply to it as to `write`. */
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number | null): number {
    const fault = this.check('write', this.name(fd));
    if (fault?.short !== undefined) {
      const n = nodeFileSystem.writeSync(fd, buffer, offset, Math.min(fault.short, length), position);
      this.journal.push(`write:${this.name(fd)}:${n}(short)`);
      if (fault.code !== '') this.inject({ op: 'write', code: fault.code, match: fault.match });
      return n;
    }
    const n = nodeFileSystem.writeSync(fd, buffer, offset, length, position);
    this.journal.push(`write:${this.name(fd)}:${n}`);
    return n;
  }
  read(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return nodeFileSystem.read(fd, buffer, offset, length, position);
  }
  async fsync(fd: number): Promise<void> {
    this.check('fsync', this.name(fd));
    await nodeFileSystem.fsync(fd);
    this.journal.push(`fsync:${this.name(fd)}`);
  }
  async fdatasync(fd: number): Promise<void> {
    this.check('fdatasync', this.name(fd));
    await this.gate('fdatasync', this.name(fd));
    await nodeFileSystem.fdatasync(fd);
    this.journal.push(`fdatasync:${this.name(fd)}`);
  }
  /**
   * The synchronous fdatasync of `fsyncOnEventLoop`. It is the same system call as `fdatasync`, so
   * `fdatasync` faults apply to it; it journals as `fdatasyncSync:<file>` to show which path ran.
   */
  fdatasyncSync(fd: number): void {
    this.check('fdatasync', this.name(fd));
    nodeFileSystem.fdatasyncSync(fd);
    this.journal.push(`fdatasyncSync:${this.name(fd)}`);
  }
  async ftruncate(fd: number, length: number): Promise<void> {
    this.check('ftruncate', this.name(fd));
    await nodeFileSystem.ftruncate(fd, length);
    this.journal.push(`ftruncate:${this.name(fd)}:${length}`);
  }
  fstat(fd: number): Promise<{ size: number }> {
    return nodeFileSystem.fstat(fd);
  }
  stat(p: string) {
    return nodeFileSystem.stat(p);
  }
  readFile(p: string): Promise<Buffer> {
    return nodeFileSystem.readFile(p);
  }
  readdir(p: string): Promise<string[]> {
    return nodeFileSystem.readdir(p);
  }
  async mkdir(p: string, mode?: number): Promise<void> {
    this.check('mkdir', path.basename(p));
    await nodeFileSystem.mkdir(p, mode);
  }
  async rename(from: string, to: string): Promise<void> {
    await this.gate('rename', `${path.basename(from)}->${path.basename(to)}`);
    this.check('rename', `${path.basename(from)}->${path.basename(to)}`);
    await nodeFileSystem.rename(from, to);
    this.journal.push(`rename:${path.basename(from)}->${path.basename(to)}`);
  }
  async unlink(p: string): Promise<void> {
    this.check('unlink', path.basename(p));
    await nodeFileSystem.unlink(p);
    this.journal.push(`unlink:${path.basename(p)}`);
  }
  async fsyncDir(p: string): Promise<void> {
    this.check('fsyncDir', path.basename(p));
    await nodeFileSystem.fsyncDir(p);
    this.journal.push(`fsyncDir:${path.basename(p)}`);
  }
}

function errno(code: string, what: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected fault, ${what}`), { code });
}
