import { type ConsumerRecord, PersistenceError, StaleConsumerError } from '../../src/index';
import { writeFully } from '../../src/kit/index';
import type { FileSystem } from './file-system';

/** The consumers' file in the log folder (`appendonlydir/`), beside the manifest. */
export const CONSUMERS_FILE = 'appendonly-consumers.json';

/**
 * The AOF store's consumer records: one JSON file in the log folder, replaced whole on each save
 * as the manifest is (a temporary file, fsync, rename, fsync of the folder), so that a crash
 * leaves the old file or the new one, never a mix. Kept out of the AOF itself so that the log
 * stays plain Redis commands (redis-check-aof, a Redis server loading it) and compaction need not
 * carry them. (A later "reaction" — a consumer's commands appended atomically with its position —
 * will put the position in the AOF beside those commands, as a `#` annotation Redis ignores; at
 * open the position is then the later of this file's and the log's.)
 *
 * Invariant: `records` is what the file holds once the last save resolved; saves run one at a
 * time, in call order.
 */
export class ConsumerFile {
  private records: Map<string, ConsumerRecord> | null = null;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly fs: FileSystem,
    /** The log folder. */
    private readonly folder: string,
    private readonly path: string,
    /** A name `removeTempFiles` clears at open (a save the process died in). */
    private readonly tempPath: string,
    private readonly mode: number | undefined,
  ) {}

  async load(): Promise<ConsumerRecord[]> {
    return [...(await this.map()).values()];
  }

  /** Replaces the record; a stored stale mark stays (see `EventStore.saveConsumer`). */
  save(record: ConsumerRecord): Promise<void> {
    return this.change((m) => {
      const stale = m.get(record.name)?.stale;
      if (stale !== undefined && record.stale === undefined)
        throw new StaleConsumerError(record.name, `a compaction at seq ${stale.seq} marked it stale`);
      const { name, position, parked } = record;
      m.set(name, { name, position, parked: [...parked], ...(record.stale ? { stale: record.stale } : {}) });
      return true;
    }).then(() => {});
  }

  remove(name: string): Promise<boolean> {
    return this.change((m) => m.delete(name));
  }

  private async map(): Promise<Map<string, ConsumerRecord>> {
    if (this.records !== null) return this.records;
    let text: string | null = null;
    try {
      text = (await this.fs.readFile(this.path)).toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw PersistenceError.from(`cannot read ${this.path}`, err);
    }
    const m = new Map<string, ConsumerRecord>();
    if (text !== null) {
      const parsed = JSON.parse(text) as { consumers?: ConsumerRecord[] };
      for (const r of parsed.consumers ?? []) m.set(r.name, r);
    }
    this.records = m;
    return m;
  }

  /** Applies `edit` to a copy and writes it; the copy becomes the truth once durable. */
  private change(edit: (m: Map<string, ConsumerRecord>) => boolean): Promise<boolean> {
    const run = this.chain.then(async () => {
      const next = new Map(await this.map());
      const changed = edit(next);
      if (!changed) return false;
      await this.write(next);
      this.records = next;
      return true;
    });
    this.chain = run.catch(() => {});
    return run;
  }

  private async write(m: Map<string, ConsumerRecord>): Promise<void> {
    const fs = this.fs;
    const bytes = Buffer.from(
      `${JSON.stringify({ format: 'appendonly-consumers', version: 1, consumers: [...m.values()] })}\n`,
      'utf8',
    );
    try {
      const fd = await fs.open(this.tempPath, 'w', this.mode);
      try {
        await writeFully(fs.write.bind(fs), fd, bytes, 0);
        await fs.fsync(fd);
      } finally {
        await fs.close(fd);
      }
      await fs.rename(this.tempPath, this.path);
      await fs.fsyncDir(this.folder);
    } catch (err) {
      await fs.unlink(this.tempPath).catch(() => {});
      throw PersistenceError.from(`cannot write ${this.path}`, err);
    }
  }
}
