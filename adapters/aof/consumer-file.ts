import { type ConsumerRecord, PersistenceError, StaleConsumerError } from '../../src/index';
import { writeFully } from '../../src/kit/index';
import type { FileSystem } from './file-system';
import type { LoggedPosition } from './record-codec';

/** A record as the file holds it: with the epoch its reactions' `@pos` records carry. */
type StoredRecord = ConsumerRecord & { readonly epoch?: number };

/** The consumers' file in the log folder (`appendonlydir/`), beside the manifest. */
export const CONSUMERS_FILE = 'appendonly-consumers.json';

/**
 * The AOF store's consumer records: one JSON file in the log folder, replaced whole on each save
 * as the manifest is (a temporary file, fsync, rename, fsync of the folder), so that a crash
 * leaves the old file or the new one, never a mix. Kept out of the AOF itself so that the log
 * stays plain Redis commands (redis-check-aof, a Redis server loading it). A reaction's position
 * is in the log instead (a `@pos` record inside its MULTI, see record-codec.ts), and the store
 * reports the greater of the two; this file gives each record an `epoch` that the `@pos` records
 * carry, so that a record moved back (a tool's clamp or strip) or made again after a delete is not
 * moved forward again by the log's older positions: a save that lowers a record below the log's
 * position of its epoch starts a new epoch, and a delete remembers the epoch it ended (`retired`).
 *
 * Invariant: `records` is what the file holds once the last save resolved; saves run one at a
 * time, in call order.
 */
export class ConsumerFile {
  private records: Map<string, StoredRecord> | null = null;
  /** The last epoch of each deleted record: a record made again under its name starts after it. */
  private retired: Record<string, number> = {};
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

  /** Every record, as `ConsumerRecord`s (without the epoch). */
  async load(): Promise<ConsumerRecord[]> {
    return [...(await this.map()).values()].map(({ epoch: _epoch, ...record }) => record);
  }

  /**
   * Every record at the greater of its position and `logged`'s of its epoch (the last `@pos` a
   * reaction of the consumer logged): what a consumer resumes after.
   */
  async loadWith(logged: ReadonlyMap<string, LoggedPosition>): Promise<ConsumerRecord[]> {
    return (await this.load()).map((r) => {
      const l = logged.get(r.name);
      return l !== undefined && l.epoch === this.epochOf(r.name) && l.position > r.position
        ? { ...r, position: l.position }
        : r;
    });
  }

  /** The epoch of the record `name` as last loaded or saved (0 before the file was read). */
  epochOf(name: string): number {
    return this.records?.get(name)?.epoch ?? 0;
  }

  /**
   * Replaces the record; a stored stale mark stays (see `EventStore.saveConsumer`). `logged` is
   * the log's last `@pos` of the name: when it is of the record's epoch and ahead of
   * `record.position`, the save moves the position back on purpose, and starts a new epoch, which
   * that `@pos` (and every earlier one) does not carry.
   */
  save(record: ConsumerRecord, logged?: LoggedPosition): Promise<void> {
    return this.change((m) => {
      const old = m.get(record.name);
      const stale = old?.stale;
      if (stale !== undefined && record.stale === undefined)
        throw new StaleConsumerError(record.name, `a compaction at seq ${stale.seq} marked it stale`);
      let epoch = old?.epoch ?? (this.retired[record.name] ?? -1) + 1;
      if (
        old !== undefined &&
        logged !== undefined &&
        logged.epoch === epoch &&
        record.position < logged.position
      )
        epoch++;
      const { name, position, parked } = record;
      m.set(name, {
        name,
        position,
        parked: [...parked],
        ...(record.stale ? { stale: record.stale } : {}),
        epoch,
      });
      return true;
    }).then(() => {});
  }

  /**
   * Writes the log's positions into the records they are ahead of (same epoch), in one save:
   * what a compaction does before the files holding those `@pos` records leave the log.
   */
  fold(positions: Iterable<LoggedPosition>): Promise<boolean> {
    return this.change((m) => {
      let changed = false;
      for (const p of positions) {
        const r = m.get(p.name);
        if (r === undefined || (r.epoch ?? 0) !== p.epoch || r.position >= p.position) continue;
        m.set(p.name, { ...r, position: p.position });
        changed = true;
      }
      return changed;
    });
  }

  remove(name: string): Promise<boolean> {
    return this.change((m, retired) => {
      const old = m.get(name);
      if (old === undefined) return false;
      m.delete(name);
      retired[name] = old.epoch ?? 0;
      return true;
    });
  }

  private async map(): Promise<Map<string, StoredRecord>> {
    if (this.records !== null) return this.records;
    let text: string | null = null;
    try {
      text = (await this.fs.readFile(this.path)).toString('utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw PersistenceError.from(`cannot read ${this.path}`, err);
    }
    const m = new Map<string, StoredRecord>();
    if (text !== null) {
      const parsed = JSON.parse(text) as { consumers?: StoredRecord[]; retired?: Record<string, number> };
      for (const r of parsed.consumers ?? []) m.set(r.name, r);
      this.retired = parsed.retired ?? {};
    }
    this.records = m;
    return m;
  }

  /** Applies `edit` to copies (the records, the retired epochs) and writes them; the copies become the truth once durable. */
  private change(
    edit: (m: Map<string, StoredRecord>, retired: Record<string, number>) => boolean,
  ): Promise<boolean> {
    const run = this.chain.then(async () => {
      const next = new Map(await this.map());
      const retired = { ...this.retired };
      const changed = edit(next, retired);
      if (!changed) return false;
      await this.write(next, retired);
      this.records = next;
      this.retired = retired;
      return true;
    });
    this.chain = run.catch(() => {});
    return run;
  }

  private async write(m: Map<string, StoredRecord>, retired: Record<string, number>): Promise<void> {
    const fs = this.fs;
    const file =
      Object.keys(retired).length === 0
        ? { format: 'appendonly-consumers', version: 1, consumers: [...m.values()] }
        : { format: 'appendonly-consumers', version: 1, consumers: [...m.values()], retired };
    const bytes = Buffer.from(`${JSON.stringify(file)}\n`, 'utf8');
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
