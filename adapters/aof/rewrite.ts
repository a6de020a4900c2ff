import * as path from 'node:path';
import type { CompactionResult, SnapshotSource, StateSnapshot, StoreContext } from '../../src/index';
import { type RetentionPlan, writeFully } from '../../src/kit/index';
import type { LogDir } from './log-dir';
import { TEMP_PREFIX } from './log-dir';
import type { ManifestEntry } from './manifest';
import type { ResolvedAofOptions } from './options';
import { encodeBaseEntry } from './record-codec';
import { type LogFile, readLog } from './reader';
import { RespEncoder } from './resp';
import type { AofWriter, AppendTarget } from './writer';

/** What a compaction needs from the store. */
export interface RewriteHost {
  readonly options: ResolvedAofOptions;
  readonly dir: LogDir;
  readonly writer: AofWriter;
  readonly context: StoreContext;
  /** Where the snapshot comes from (the scheduler's view of the context's: it marks the instant). */
  readonly snapshots: SnapshotSource;
  /** The last sequence number handed to `append`, at this instant. */
  lastSeq(): number;
  /** Bytes in the log files that are no longer appended to (base and older incr files). */
  sealedSize: number;
  currentSize(): number;
  /**
   * Step 5 is about to leave out the files holding every group up to `through`: what they hold
   * that the base does not (the reactions' consumer positions) is saved elsewhere first.
   */
  beforeDrop(through: number): Promise<void>;
  /**
   * What to keep for consumers once the new base covers `seq` (stale marks stored first); null
   * with `keepHistory`, which keeps every replaced file in history/ anyway.
   */
  retain(seq: number): Promise<RetentionPlan | null>;
}

/** Bytes of base encoded between two writes: small enough that no turn of the event loop is long. */
const CHUNK = 64 * 1024;
/**
 * fdatasync the new base every this many bytes while writing it (Redis's aof-rewrite-incremental-fsync,
 * REDIS_AUTOSYNC_BYTES): the kernel never holds a large backlog of dirty pages, so neither the final
 * fsync nor the dirty-page throttling of the appends to the incr file stalls the commands.
 */
const AUTOSYNC_BYTES = 4 * 1024 * 1024;

/**
 * BGREWRITEAOF without fork, in the order of Redis 7's multi-part rewrite, each step leaving a
 * log that loads to the same state if the process dies right after it:
 *
 * 1. open a new incr file (not yet in the manifest: an empty orphan if we die);
 * 2. at one synchronous instant: take the snapshot (state as of the last appended group) and
 *    switch the writer to the new file, holding what is appended from now on;
 * 3. once the old incr holds all its groups and is fsynced, save the manifest with the new incr
 *    appended to it (temp, fsync, rename, fsync dir), then release the held groups;
 * 4. write the snapshot as a new base into a temp file, in chunks, fsync, rename;
 * 5. save the manifest: new base + new incr, and as `type h` the replaced files that hold
 *    events a consumer has not handled (see {@link keptForConsumers});
 * 6. delete the other replaced files (or move them all to history/, with `keepHistory`).
 *
 * A failure before 3 puts the writer back on the old file; a failure after 3 keeps the manifest
 * of step 3, which names every file still holding history: nothing is lost, and the next
 * compaction starts from there. The temp base is removed on failure.
 */
export async function runRewrite(host: RewriteHost): Promise<CompactionResult> {
  const started = Date.now();
  const { dir, writer, options } = host;
  const fs = options.fs;
  const sizeBefore = host.currentSize();
  const oldManifest = dir.manifest;

  const lastSeqAtOpen = host.lastSeq();
  const incr = dir.nextIncr(lastSeqAtOpen + 1);
  const incrFd = await dir.createFile(incr.name);
  const next: AppendTarget = { name: incr.name, path: dir.file(incr.name), fd: incrFd, size: 0 };

  // Step 2: nothing between these lines may await.
  const seq = host.lastSeq();
  let snapshot: StateSnapshot;
  try {
    snapshot = host.snapshots.takeSnapshot();
  } catch (err) {
    // Nothing was switched yet: the new incr file is an orphan, remove it.
    await fs.close(incrFd).catch(() => {});
    await fs.unlink(next.path).catch(() => {});
    throw err;
  }
  writer.rewriting = true;
  const newIncr: ManifestEntry = { ...incr, startSeq: seq + 1 };
  const switched = writer.switchTo(next);

  let tempBase: string | null = null;
  try {
    let old: AppendTarget | null = null;
    try {
      old = await switched;
      const incrs = [...oldManifest.incrs, newIncr];
      await dir.persist({ base: oldManifest.base, incrs, history: oldManifest.history });
    } catch (err) {
      if (old !== null && dir.manifest.incrs.includes(newIncr)) {
        // The manifest was renamed into place (only the folder fsync failed): the switch stands.
        await finishSwitch(host, old);
      } else {
        writer.revert();
        await fs.close(incrFd).catch(() => {});
        await fs.unlink(next.path).catch(() => {});
      }
      throw err;
    }
    await finishSwitch(host, old);

    // Step 4.
    // The manifest names the base with the version of the state it holds (see manifest.ts).
    const version = snapshot.projectionsVersion;
    const base: ManifestEntry =
      version === undefined ? dir.nextBase(seq) : { ...dir.nextBase(seq), projectionsVersion: version };
    tempBase = dir.file(`${TEMP_PREFIX}rewriteaof-${base.seq}.aof`);
    const keys = snapshot.size;
    const baseSize = await writeBase(host, tempBase, snapshot);
    await fs.rename(tempBase, dir.file(base.name));
    tempBase = null;

    // Step 5. The old files' consumer positions are in the consumers' file before they go.
    await host.beforeDrop(seq);
    // The kept files are named as history: neither our replay nor Redis's loader reads
    // them, and they are not part of sealedSize, so they never count towards the next trigger.
    const plan = await host.retain(seq);
    const kept = plan === null ? [] : await keptForConsumers(host, oldManifest, newIncr, plan.keepAfter);
    const keptNames = new Set(kept.map((e) => e.name));
    const replaced = [
      ...(oldManifest.base ? [oldManifest.base] : []),
      ...oldManifest.history,
      ...oldManifest.incrs,
    ].filter((e) => !keptNames.has(e.name));
    await dir.persist({ base, incrs: [newIncr], history: kept });
    host.sealedSize = baseSize;

    // Step 6: the manifest no longer names them; a failure here only leaves garbage.
    await removeReplaced(host, replaced);
    return { seq, keys, sizeBefore, sizeAfter: host.currentSize(), durationMs: Date.now() - started };
  } catch (err) {
    if (tempBase !== null) await fs.unlink(tempBase).catch(() => {});
    throw err;
  } finally {
    writer.rewriting = false;
    snapshot.release();
  }
}

/**
 * The files a consumer still needs once the new base covers up to `newIncr.startSeq - 1`: of
 * the old history files and the replaced incr files (one run of seqs, in order, ending there),
 * those holding an event after `keepAfter`, as `type h` entries with their first seq. They are
 * a suffix of the run, so the kept files stay one run ending at the base: `read` chains them to
 * the incr files. An incr file whose first seq the manifest does not give (written by Redis or
 * by hand) is numbered by reading the one before it.
 */
async function keptForConsumers(
  host: RewriteHost,
  old: {
    readonly base: ManifestEntry | null;
    readonly history: readonly ManifestEntry[];
    readonly incrs: readonly ManifestEntry[];
  },
  newIncr: ManifestEntry,
  keepAfter: number | null,
): Promise<ManifestEntry[]> {
  if (keepAfter === null) return [];
  const run = [...old.history, ...old.incrs];
  const starts: number[] = [];
  let next = old.history[0]?.startSeq ?? (old.base?.lastSeq ?? 0) + 1;
  for (let i = 0; i < run.length; i++) {
    const e = run[i];
    const start = e.startSeq ?? (i === old.history.length ? (old.base?.lastSeq ?? 0) + 1 : next);
    starts.push(start);
    const following = run[i + 1]?.startSeq;
    if (following !== undefined || i === run.length - 1) next = following ?? newIncr.startSeq!;
    else next = (await lastSeqOf(host, e, start)) + 1;
  }
  const kept: ManifestEntry[] = [];
  for (let i = 0; i < run.length; i++) {
    const end = (i + 1 < run.length ? starts[i + 1] : newIncr.startSeq!) - 1;
    if (end > keepAfter) kept.push({ name: run[i].name, seq: run[i].seq, type: 'h', startSeq: starts[i] });
  }
  return kept;
}

/** The last seq in an incr file whose first is `start` (start - 1 when it holds none). */
async function lastSeqOf(host: RewriteHost, e: ManifestEntry, start: number): Promise<number> {
  const file: LogFile = { name: e.name, path: host.dir.file(e.name), kind: 'incr', seq: start };
  const summary = { lastSeq: start - 1, sizes: [] as number[] };
  const reading = readLog(
    [file],
    { fs: host.options.fs, loadTruncated: false, truncate: async () => {}, warn: () => {}, setRecords: true },
    summary,
  );
  while (!(await reading.next()).done);
  return Math.max(summary.lastSeq, start - 1);
}

/** The manifest names the new incr file: write what was held there, and retire the old file. */
async function finishSwitch(host: RewriteHost, old: AppendTarget): Promise<void> {
  host.writer.release();
  host.sealedSize += old.size;
  await host.options.fs.close(old.fd).catch(() => {});
}

async function writeBase(host: RewriteHost, file: string, snapshot: StateSnapshot): Promise<number> {
  const fs = host.options.fs;
  const fd = await fs.open(file, 'w', host.options.fileMode);
  let position = 0;
  let synced = 0;
  try {
    const enc = new RespEncoder(CHUNK + 64 * 1024);
    const flush = async (): Promise<void> => {
      const bytes = enc.bytes();
      await writeFully(fs.write.bind(fs), fd, bytes, position);
      position += bytes.length;
      enc.reset(CHUNK * 4);
      if (position - synced >= AUTOSYNC_BYTES) {
        await fs.fdatasync(fd);
        synced = position;
      }
    };
    for (const [key, value] of snapshot.entries()) {
      encodeBaseEntry(enc, key, value);
      if (enc.length >= CHUNK) await flush();
    }
    if (enc.length > 0) await flush();
    await fs.fsync(fd);
  } finally {
    await fs.close(fd);
  }
  return position;
}

async function removeReplaced(host: RewriteHost, replaced: readonly ManifestEntry[]): Promise<void> {
  const { fs, keepHistory, dirMode } = host.options;
  const dir = host.dir;
  try {
    if (keepHistory) {
      const history = dir.historyPath;
      await fs.mkdir(history, dirMode).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      });
      for (const e of replaced) await fs.rename(dir.file(e.name), path.join(history, e.name));
      await fs.fsyncDir(history);
    } else {
      for (const e of replaced) await fs.unlink(dir.file(e.name));
    }
    await fs.fsyncDir(dir.path);
  } catch (err) {
    host.context.logger.warn(
      `compaction: could not remove the replaced log files: ${(err as Error).message}`,
    );
  }
}
