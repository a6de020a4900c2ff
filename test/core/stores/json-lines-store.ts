import * as fs from 'node:fs';
import {
  AppClosedError,
  type EventGroup,
  type EventStore,
  PersistenceError,
  type ReplayEnd,
  type ReplayOptions,
  type ReplaySink,
  StoreLockedError,
  type StoreOpenInfo,
} from 'appendonly';

/**
 * A store written the way a new contributor would start one: the four methods and nothing else
 * (no compaction, no recovery, no stats). One JSON line per command in a real file, written and
 * fdatasynced before `append` resolves. It exists to prove that the contract is small: a real
 * app runs on it, and it passes the conformance suite.
 */
export class JsonLinesStore implements EventStore {
  readonly kind = 'json-lines';
  private fd: number | null = null;
  private used = false;

  constructor(private readonly file: string) {}

  async open(): Promise<StoreOpenInfo> {
    if (this.used) throw new StoreLockedError(`this JsonLinesStore on ${this.file} was opened already`);
    this.used = true;
    // One writer: a lock file made with O_EXCL (a crash leaves it behind; good enough for a test store).
    try {
      fs.closeSync(fs.openSync(`${this.file}.lock`, 'wx'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw new StoreLockedError(`${this.file} is open elsewhere`);
      throw err;
    }
    const created = !fs.existsSync(this.file);
    this.fd = fs.openSync(this.file, 'a+');
    return { kind: this.kind, location: this.file, created, sizeBytes: fs.fstatSync(this.fd).size };
  }

  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    const after = options?.after ?? 0;
    let lastSeq = 0;
    for (const line of fs.readFileSync(this.file, 'utf8').split('\n')) {
      if (line === '') continue;
      const group = JSON.parse(line) as EventGroup;
      if (group.seq > after) sink.group(group, { file: this.file });
      lastSeq = group.seq + group.events.length - 1;
    }
    return { lastSeq };
  }

  append(group: EventGroup): Promise<void> {
    if (this.fd === null)
      return Promise.reject(new AppClosedError(`the JsonLinesStore on ${this.file} is closed`));
    try {
      fs.writeSync(this.fd, `${JSON.stringify(group)}\n`);
      fs.fdatasyncSync(this.fd);
    } catch (err) {
      return Promise.reject(PersistenceError.from(`writing ${this.file}`, err));
    }
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    fs.rmSync(`${this.file}.lock`);
    this.fd = null;
  }
}
